package livepatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writeTree makes a sysfs-like livepatch tree: files name → content.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestSysfsList(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    []Patch
		wantErr string
	}{
		{"empty", map[string]string{"x/": ""}, nil, ""},
		{"one patch", map[string]string{
			"tt_cmd/enabled": "1\n", "tt_cmd/transition": "0\n", "tt_cmd/force": "", "tt_cmd/replace": "1\n",
			"tt_cmd/vmlinux/cmdline_proc_show,1/": "", "tt_cmd/vmlinux/patched": "1\n",
		}, []Patch{{Name: "tt_cmd", Enabled: true, Funcs: []string{"vmlinux/cmdline_proc_show,1"}}}, ""},
		{"in transition, two objects", map[string]string{
			"b/enabled": "1", "b/transition": "1",
			"b/vmlinux/c_start,2/": "", "b/isofs/rock_ridge_symlink_read_folio,1/": "",
			"a/enabled": "0", "a/transition": "1",
		}, []Patch{
			{Name: "a", Transition: true},
			{Name: "b", Enabled: true, Transition: true, Funcs: []string{"isofs/rock_ridge_symlink_read_folio,1", "vmlinux/c_start,2"}},
		}, ""},
		{"garbage", map[string]string{"p/enabled": "yes", "p/transition": "0"}, nil, "is not 0 or 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, tt.files)
			if tt.name == "empty" {
				os.Remove(filepath.Join(root, "x"))
			}
			got, err := Sysfs{Root: root}.List()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("List() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("List() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSysfsUnsupported(t *testing.T) {
	s := Sysfs{Root: filepath.Join(t.TempDir(), "no-livepatch")}
	if s.Supported() {
		t.Error("Supported() = true for a missing tree")
	}
	if _, err := s.List(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("List() error = %v, want ErrUnsupported", err)
	}
	if _, err := (Sysfs{Root: t.TempDir()}).Get("../etc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(../etc) error = %v, want ErrNotFound", err)
	}
}

func TestFuncNames(t *testing.T) {
	p := Patch{Funcs: []string{"vmlinux/cmdline_proc_show,1", "isofs/rock_ridge_symlink_read_folio,0", "bogus"}}
	if got, want := p.FuncNames(), []string{"cmdline_proc_show", "rock_ridge_symlink_read_folio"}; !reflect.DeepEqual(got, want) {
		t.Errorf("FuncNames() = %q, want %q", got, want)
	}
}

// fakeKernel plays the livepatch core over a temporary tree: Load
// registers the patch in transition, and a loop finishes transitions as
// the mode says.
type fakeKernel struct {
	root string
	// mode: "ok" finishes a transition at once; "signal" only after a
	// write to signal; "stuck" never while patching (unpatching works).
	mode     string
	mu       sync.Mutex
	loaded   map[string]bool
	unloaded []string
	busy     int // Unload fails with EBUSY this many times
}

func (k *fakeKernel) Load(ctx context.Context, path string) error {
	name := strings.TrimSuffix(filepath.Base(path), ".ko")
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded[name] {
		return ErrModuleExists
	}
	k.loaded[name] = true
	dir := filepath.Join(k.root, name)
	os.MkdirAll(filepath.Join(dir, "vmlinux", "f,1"), 0o755)
	os.WriteFile(filepath.Join(dir, "enabled"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "transition"), []byte("1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "signal"), nil, 0o644)
	return nil
}

func (k *fakeKernel) Unload(ctx context.Context, name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loaded[name] {
		return ErrModuleNotLoaded
	}
	if _, err := os.Stat(filepath.Join(k.root, name)); err == nil {
		return errors.New("EBUSY: patch still registered")
	}
	if k.busy > 0 {
		k.busy--
		return errors.New("EBUSY")
	}
	delete(k.loaded, name)
	k.unloaded = append(k.unloaded, name)
	return nil
}

// run finishes transitions until ctx is done.
func (k *fakeKernel) run(ctx context.Context) {
	for ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
		ents, _ := os.ReadDir(k.root)
		for _, e := range ents {
			dir := filepath.Join(k.root, e.Name())
			en, err1 := os.ReadFile(filepath.Join(dir, "enabled"))
			tr, err2 := os.ReadFile(filepath.Join(dir, "transition"))
			if err1 != nil || err2 != nil || len(en) == 0 || len(tr) == 0 {
				continue // Load is still writing it
			}
			sig, _ := os.ReadFile(filepath.Join(dir, "signal"))
			patching := strings.TrimSpace(string(en)) == "1"
			if strings.TrimSpace(string(tr)) == "1" && patching {
				if k.mode == "ok" || (k.mode == "signal" && strings.TrimSpace(string(sig)) == "1") {
					os.WriteFile(filepath.Join(dir, "transition"), []byte("0\n"), 0o644)
				}
			}
			if !patching {
				os.RemoveAll(dir) // unpatched: the kernel unregisters it
			}
		}
	}
}

func TestApplyPolicy(t *testing.T) {
	tests := []struct {
		mode     string
		wantErr  error
		wantLeft bool // the patch is still registered afterwards
	}{
		{"ok", nil, true},
		{"signal", nil, true},
		{"stuck", ErrTransitionStuck, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			root := t.TempDir()
			k := &fakeKernel{root: root, mode: tt.mode, loaded: map[string]bool{}, busy: 2}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go k.run(ctx)
			m := &Manager{Sysfs: Sysfs{Root: root}, Modules: k,
				Policy: Policy{Wait: 50 * time.Millisecond, SignalWait: 100 * time.Millisecond, Interval: 5 * time.Millisecond}}
			p, err := m.Apply(ctx, "/x/tt_p.ko", "tt_p")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Apply error = %v, want %v", err, tt.wantErr)
			}
			_, gerr := m.Sysfs.Get("tt_p")
			if left := gerr == nil; left != tt.wantLeft {
				t.Errorf("registered after Apply = %v, want %v", left, tt.wantLeft)
			}
			if err == nil {
				if !p.Enabled || p.Transition || len(p.Funcs) != 1 {
					t.Errorf("Apply = %+v, want enabled, out of transition, one function", p)
				}
				if err := m.Remove(ctx, "tt_p"); err != nil {
					t.Fatalf("Remove: %v", err)
				}
			}
			if !reflect.DeepEqual(k.unloaded, []string{"tt_p"}) {
				t.Errorf("unloaded = %q, want tt_p once", k.unloaded)
			}
		})
	}
}

func TestSignalAttribute(t *testing.T) {
	root := writeTree(t, map[string]string{"p/enabled": "1", "p/transition": "1", "q/enabled": "1", "q/transition": "1", "q/signal": ""})
	s := Sysfs{Root: root}
	if err := s.Signal("p"); !errors.Is(err, ErrNoSignal) {
		t.Errorf("Signal on a 6.1-style patch (no signal attribute) = %v, want ErrNoSignal", err)
	}
	if err := s.Signal("q"); err != nil {
		t.Errorf("Signal with the attribute: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "q", "signal")); string(b) != "1\n" {
		t.Errorf("signal attribute = %q, want 1", b)
	}
	if err := s.Signal("gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Signal on a missing patch = %v, want ErrNotFound", err)
	}
}

func TestApplyRegistersNothing(t *testing.T) {
	root := t.TempDir()
	m := &Manager{Sysfs: Sysfs{Root: root}, Modules: noopModules{}, Policy: Policy{Interval: time.Millisecond}}
	if _, err := m.Apply(context.Background(), "/x/plain.ko", "plain"); err == nil || !strings.Contains(err.Error(), "registered no livepatch") {
		t.Errorf("Apply of a module that is no livepatch: %v", err)
	}
}

type noopModules struct{}

func (noopModules) Load(context.Context, string) error   { return nil }
func (noopModules) Unload(context.Context, string) error { return nil }

func TestGone(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "open", Path: "/sys/kernel/livepatch/p/transition", Err: syscall.ENODEV}, true},
		{&os.PathError{Op: "open", Path: "/sys/kernel/livepatch/p/enabled", Err: syscall.ENOENT}, true},
		{&os.PathError{Op: "open", Path: "/sys/kernel/livepatch/p/enabled", Err: syscall.EACCES}, false},
	}
	for _, tt := range tests {
		if got := gone(tt.err); got != tt.want {
			t.Errorf("gone(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
