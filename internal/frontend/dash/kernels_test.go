package dash

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/patch"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/service"
)

// The fake server's kernel calls, with the rules the server has for
// them: a kernel's name once, a release and a source, a version and a
// config for a source that is not Debian's.

func (f *fakeSource) AddKernel(ctx context.Context, o service.AddKernelOptions) (*kernel.Kernel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["AddKernel"]++
	f.added = append(f.added, o)
	switch {
	case slices.ContainsFunc(f.kernels, func(k service.KernelView) bool { return k.Name == o.Name }):
		return nil, fmt.Errorf("rpc error: code = AlreadyExists desc = kernel %s already exists", o.Name)
	case o.Release == "":
		return nil, fmt.Errorf("rpc error: code = InvalidArgument desc = release is required")
	case o.Version == "" && !strings.HasPrefix(o.Source, "debian:"):
		return nil, fmt.Errorf("rpc error: code = InvalidArgument desc = kernel add: --version is required for a non-Debian source (e.g. 6.1.176)")
	}
	src, err := kernel.ParseSource(o.Source, o.Ref)
	if err != nil {
		return nil, fmt.Errorf("rpc error: code = InvalidArgument desc = %v", err)
	}
	k := &kernel.Kernel{Name: o.Name, Release: o.Release, Version: o.Version, Arch: "x86_64", Source: src, Config: o.Config, Added: now}
	f.kernels = append(f.kernels, service.KernelView{Kernel: k, ConfigSHA256: "00", Profiles: map[string]time.Time{}})
	return k, nil
}

// The fake's build profile: a module's sources, vmlinux's, and a header
// both read.
func (f *fakeSource) Profile(ctx context.Context, name string, o service.ProfileOptions) (*profile.Profile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Profile"]++
	if name != "tiny" {
		return nil, fmt.Errorf("rpc error: code = FailedPrecondition desc = kernel %s: no source to profile", name)
	}
	p := &profile.Profile{Kind: profile.KindReal, Units: []profile.Unit{
		{Source: "fs/isofs/inode.c", Object: "fs/isofs/inode.o", Target: "isofs"},
		{Source: "fs/isofs/rock.c", Object: "fs/isofs/rock.o", Target: "isofs"},
		{Source: "kernel/fork.c", Object: "kernel/fork.o", Target: profile.Vmlinux},
		{Source: "net/sched/sch_netem.c", Object: "net/sched/sch_netem.o", Target: "sch_netem", Possible: true},
	}, Deps: map[string][]int32{"include/linux/fs.h": {0, 1, 2}, "fs/isofs/rock.h": {1}}}
	p.Sort()
	return p, nil
}

func (f *fakeSource) Jobs(ctx context.Context, q service.JobQuery) ([]job.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["Jobs"]++
	f.calls["Jobs "+q.Kernel]++
	out := []job.Job{}
	for _, j := range f.wf.jobs {
		if q.Kernel == "" || j.Kernel == q.Kernel {
			out = append(out, j.Job)
		}
	}
	slices.SortFunc(out, func(a, b job.Job) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// kernelJobs gives the fixture's jobs times and builders, and adds the
// tiny kernel's full build.
func (f *fakeSource) kernelJobs() {
	i := 0
	for _, id := range slices.Sorted(maps.Keys(f.wf.jobs)) {
		j := f.wf.jobs[id]
		i++
		j.Created, j.Updated = now.Add(-time.Duration(10-i)*time.Hour), now.Add(-time.Duration(10-i)*time.Hour+20*time.Minute)
		j.Builder, j.Attempts, j.MaxAttempts = "vm-builder", 1, 3
		f.wf.jobs[id] = j
	}
	f.wf.jobs["00000000000000k1"] = service.JobDetail{Job: job.Job{ID: "00000000000000k1", Kind: job.KernelBuild, State: job.Failed, Kernel: "tiny",
		Builder: "big-1", Attempts: 3, MaxAttempts: 3, Created: now.Add(-26 * time.Hour), Updated: now.Add(-25 * time.Hour), Error: "make: *** [Makefile:1234: vmlinux] Error 2"}}
	f.wf.logs["00000000000000k1"] = []string{"fetch linux-6.1.176.tar.xz", "make olddefconfig", "make -j16 vmlinux modules", "make: *** [Makefile:1234: vmlinux] Error 2"}
}

// kernelDriver is a dashboard on the fake, with a source tree for
// menuconfig from tree (nil: none).
func kernelDriver(t *testing.T, f *fakeSource, w, h int, tree func(context.Context, *kernel.Kernel) (string, error)) *driver {
	t.Helper()
	m := New(t.Context(), f, Options{Profile: service.ProfileNone, Now: func() time.Time { return now }, Location: time.UTC, Tree: tree})
	d := &driver{t: t, m: m}
	d.send(tea.WindowSizeMsg{Width: w, Height: h})
	d.run(m.Init())
	return d
}

// TestKernelForm: n's form sends what was typed, with the config file
// read here; the server's refusal is on the page and the form comes back
// as it was.
func TestKernelForm(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tiny.config")
	os.WriteFile(cfg, []byte("CONFIG_X86_64=y\n"), 0o600)
	fields := func(name, release, source, ref, version, config string) []string {
		var out []string
		for i, v := range []string{name, release, source, ref, version, config} {
			if v != "" {
				out = append(out, pasted(v))
			}
			if i < 5 {
				out = append(out, "tab")
			}
		}
		return append(out, "enter")
	}
	tests := []struct {
		name   string
		keys   []string
		sent   string // the AddKernel call, "" for none
		screen []string
		open   bool // the form is still open
	}{
		{"a Debian kernel", keysOf([]string{"4", "n"}, fields("cloud", "6.1.0-50-cloud-amd64", "debian:linux-source-6.1=6.1.176-1", "", "", "")),
			"cloud 6.1.0-50-cloud-amd64 debian:linux-source-6.1=6.1.176-1  0", []string{"added kernel cloud", "› tiny", "cloud"}, false},
		{"a tarball with its config", keysOf([]string{"4", "n"}, fields("tiny3", "6.1.176-tiny3", "https://example.org/linux-6.1.176.tar.xz", "", "6.1.176", cfg)),
			"tiny3 6.1.176-tiny3 https://example.org/linux-6.1.176.tar.xz 6.1.176 16", []string{"added kernel tiny3 (its config: 16 bytes)"}, false},
		{"enter moves on, shift+tab back", keysOf([]string{"4", "n"}, typed("x"), []string{"enter"}, typed("r"), []string{"shift+tab"}, typed("y")),
			"", []string{"› name     xy", "release  r"}, true},
		{"the server refuses: its error, the form as it was", keysOf([]string{"4", "n"}, fields("tiny", "6.1.176-tiny", "https://example.org/l.tar.xz", "", "6.1.176", "")),
			"tiny 6.1.176-tiny https://example.org/l.tar.xz 6.1.176 0", []string{"error: add kernel tiny: rpc error: code = AlreadyExists desc = kernel tiny already exists", "name     tiny"}, true},
		{"a missing config file: nothing sent", keysOf([]string{"4", "n"}, fields("k", "6.1.176-k", "https://example.org/l.tar.xz", "", "6.1.176", "/no/such.config")),
			"", []string{"error: the config /no/such.config: no such file"}, true},
		{"esc drops it; q in it is text", keysOf([]string{"4", "n"}, typed("q1"), []string{"esc"}), "", []string{"2 kernels registered", "› tiny"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			d := kernelDriver(t, f, 120, 40, nil)
			d.keys(tt.keys...)
			var got string
			if len(f.added) > 0 {
				o := f.added[0]
				got = fmt.Sprintf("%s %s %s %s %d", o.Name, o.Release, o.Source, o.Version, len(o.Config))
			}
			if got != tt.sent {
				t.Errorf("AddKernel %q, want %q", got, tt.sent)
			}
			s := d.screen()
			for _, want := range tt.screen {
				if !strings.Contains(s, want) {
					t.Errorf("screen lacks %q:\n%s", want, s)
				}
			}
			if d.m.kern.form.active != tt.open || d.quit {
				t.Errorf("form open %v, quit %v; want open %v", d.m.kern.form.active, d.quit, tt.open)
			}
		})
	}
}

func TestSearchProfile(t *testing.T) {
	f := newFake(t)
	p, _ := f.Profile(t.Context(), "tiny", service.ProfileOptions{})
	ix := profile.NewIndex(p)
	tests := []struct {
		frag string
		want []string
	}{
		{"fs/isofs/rock.c", []string{"fs/isofs/rock.c: compiled into module isofs"}},
		{"rock", []string{"fs/isofs/rock.c: compiled into module isofs", "fs/isofs/rock.h: read by the units of module isofs"}},
		{"linux/fs.h", []string{"include/linux/fs.h: read by the units of vmlinux and module isofs"}},
		{"fork.c", []string{"kernel/fork.c: compiled into vmlinux"}},
		{"netem", []string{"net/sched/sch_netem.c: compiled into module sch_netem (possibly: the static evaluation could not decide)"}},
		{"ext4", nil},
	}
	for _, tt := range tests {
		ms, n := searchProfile(ix, tt.frag, maxMatches)
		var got []string
		for _, m := range ms {
			got = append(got, m.path+": "+whereText(m.where))
		}
		if !slices.Equal(got, tt.want) || n != len(tt.want) {
			t.Errorf("searchProfile(%q) = %q (%d), want %q", tt.frag, got, n, tt.want)
		}
	}
	if ms, n := searchProfile(ix, "s", 2); len(ms) != 2 || n != 5 {
		t.Errorf("searchProfile(s, limit 2) = %d of %d, want 2 of 5", len(ms), n)
	}
}

// TestKernelSearch: / on a kernel asks for its profile once, and says
// where the files matching go.
func TestKernelSearch(t *testing.T) {
	tests := []struct {
		name     string
		keys     []string
		profiles int
		screen   []string
	}{
		{"a module's file", keysOf([]string{"4", "enter", "/"}, typed("rock.c"), []string{"enter"}), 1,
			[]string{`Where it goes: "rock.c" · real profile, 4 units`, "fs/isofs/rock.c  compiled into module isofs"}},
		{"asked once for two searches", keysOf([]string{"4", "enter", "/"}, typed("rock.c"), []string{"enter", "/"}, typed("x"), []string{"enter"}), 1,
			[]string{`"rock.cx"`, "not compiled: no file matching"}},
		{"the server's refusal", keysOf([]string{"4", "down", "enter", "/"}, typed("rock.c"), []string{"enter"}), 1,
			[]string{"error: the build profile of tiny2: rpc error: code = FailedPrecondition"}},
		{"esc on the line: no query", []string{"4", "enter", "/", "x", "esc"}, 0, []string{"kernel tiny"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			d := kernelDriver(t, f, 120, 40, nil)
			d.keys(tt.keys...)
			if got := f.count("Profile"); got != tt.profiles {
				t.Errorf("%d Profile calls, want %d", got, tt.profiles)
			}
			s := d.screen()
			for _, want := range tt.screen {
				if !strings.Contains(s, want) {
					t.Errorf("screen lacks %q:\n%s", want, s)
				}
			}
		})
	}
}

// TestKernelJobs: b lists the kernel's jobs, newest first; enter follows
// one's log; esc goes back to the kernel and stops the follower.
func TestKernelJobs(t *testing.T) {
	f := newFake(t)
	d := kernelDriver(t, f, 120, 40, nil)
	d.keys("4", "enter", "b")
	if f.count("Jobs tiny") != 1 || len(d.m.kern.jobs) != 4 || d.m.kern.jobs[0].ID != "00000000000000j3" {
		t.Fatalf("Jobs calls %v, jobs %v", f.calls, d.m.kern.jobs)
	}
	s := d.screen()
	for _, want := range []string{"kernel tiny · 4 job(s)", "› 00000000000000j3  patch-build   done", "00000000000000k1  kernel-build  failed", "big-1", "3/3"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	d.keys("down", "down", "down", "enter")
	d.settleLog(&d.m.kern.jobLog)
	s = d.screen()
	for _, want := range []string{"build log · job 00000000000000k1 · 4 lines · the job is over", "make -j16 vmlinux modules"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	ctx := d.m.kern.logCtx
	d.keys("esc")
	if d.m.kern.jobsOpen || d.m.kern.logCh != nil || ctx.Err() == nil {
		t.Errorf("after esc: jobs open %v, follower %v", d.m.kern.jobsOpen, ctx.Err())
	}
	if s := d.screen(); !strings.Contains(s, "fixed CVEs") {
		t.Errorf("esc did not go back to the kernel:\n%s", s)
	}
}

// settleLog lets a follower's goroutine deliver what it has.
func (d *driver) settleLog(l *jobLog) {
	d.t.Helper()
	for range 20 {
		if l.logCh == nil || l.logDone {
			return
		}
		d.run(waitLog(l.logCtx, l.logCh))
	}
}

// fakeTree is a kernel source whose Makefile does what the kernel's
// config targets do to KCONFIG_CONFIG, here: a defconfig writes one, and
// menuconfig sets an option the way a person would.
func fakeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mk := "%config:\n\tprintf 'CONFIG_X86_64=y\\n# CONFIG_IKCONFIG is not set\\n# made by $@ for $(ARCH) in $(O)\\n' > $(KCONFIG_CONFIG)\n" +
		"menuconfig:\n\tsed -i -e 's/^# CONFIG_IKCONFIG is not set$$/CONFIG_IKCONFIG=y/' $(KCONFIG_CONFIG)\n"
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMenuconfig: c makes a new kernel's config from a registered one's
// (or a defconfig of its source) in a private directory, runs menuconfig
// there, and sends what it saved as a new kernel of the base's release
// and source with the base's declared fixes.
func TestMenuconfig(t *testing.T) {
	const base = "CONFIG_X86_64=y\n# CONFIG_IKCONFIG is not set\n"
	tests := []struct {
		name    string
		keys    []string
		edit    bool // menuconfig changes the config
		treeErr error
		sent    string // the new kernel's config, "" for none
		screen  string
	}{
		{"from the base's config", keysOf([]string{"4", "c"}, typed("debug"), []string{"enter", "enter"}), true, nil,
			"CONFIG_X86_64=y\nCONFIG_IKCONFIG=y\n", "added kernel tiny-customdebug"},
		{"from a defconfig", keysOf([]string{"4", "c", "enter"}, typed("tinyconfig"), []string{"enter"}), false, nil,
			"", "no change: no kernel made"},
		{"from a defconfig, changed", keysOf([]string{"4", "c", "enter"}, []string{pasted("x86_64_defconfig")}, []string{"enter"}), true, nil,
			"CONFIG_X86_64=y\nCONFIG_IKCONFIG=y\n# made by x86_64_defconfig for x86_64 in ", "added kernel tiny-custom"},
		{"no change: nothing sent", keysOf([]string{"4", "c", "enter", "enter"}), false, nil, "", "no change: no kernel made"},
		{"not a defconfig target", keysOf([]string{"4", "c", "enter"}, typed("clean"), []string{"enter"}), false, nil, "",
			`error: start from "clean": want a defconfig target`},
		{"the source cannot be had", keysOf([]string{"4", "c", "enter", "enter"}), false, fmt.Errorf("fetch linux-source: no network"), "",
			"error: the source of tiny: fetch linux-source: no network"},
		{"the name taken: the server's refusal", keysOf([]string{"4", "down", "c"}, []string{"backspace", "backspace", "backspace", "backspace", "backspace", "backspace", "backspace"},
			[]string{"enter", "enter"}), true, nil, "CONFIG_X86_64=y\nCONFIG_IKCONFIG=y\n", "error: add kernel tiny2: rpc error: code = AlreadyExists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.kernels[0].Config = []byte(base)
			f.kernels[1].Config = []byte(base)
			f.kernels[0].FixedCVEs = []string{"CVE-2024-1234"}
			tree := fakeTree(t)
			var asked []string
			d := kernelDriver(t, f, 120, 40, func(ctx context.Context, k *kernel.Kernel) (string, error) {
				asked = append(asked, k.Name)
				return tree, tt.treeErr
			})
			d.keys(tt.keys...)
			// A defconfig's make may take longer than the driver waits.
			d.until(func() bool { k := &d.m.kern; return k.mk == nil || k.mk.dir != "" || k.err != nil }, 30*time.Second)
			mk := d.m.kern.mk
			if mk != nil && mk.dir != "" {
				// What tea.ExecProcess runs, by hand: the kernel's make
				// menuconfig, then the callback.
				var err error
				if tt.edit {
					err = mk.make(t.Context(), "menuconfig").Run()
				}
				d.send(afterMenuconfig(mk)(err))
				if _, err := os.Stat(mk.dir); err == nil {
					t.Error("the private build directory was left behind")
				}
			}
			var got string
			if len(f.added) > 0 {
				o := f.added[0]
				got = string(o.Config)
				wantSrc := "/srv/linux-6.1.176.tar.xz"
				if o.Name == "tiny2" {
					wantSrc = "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.176.tar.xz"
				}
				if o.Release == "" || o.Source != wantSrc || !o.NoChangelog {
					t.Errorf("AddKernel(%+v)", o)
				}
				if o.Name == "tiny-customdebug" && (len(o.Fixed) != 1 || string(o.Fixed[0].Data) != "CVE-2024-1234\n") {
					t.Errorf("the base's fixes: %+v", o.Fixed)
				}
			}
			if !strings.HasPrefix(got, tt.sent) || (tt.sent == "") != (got == "") {
				t.Errorf("AddKernel config %q, want %q", got, tt.sent)
			}
			if s := d.screen(); !strings.Contains(s, tt.screen) {
				t.Errorf("screen lacks %q:\n%s", tt.screen, s)
			}
			if d.m.kern.mk != nil || d.m.loading != 0 {
				t.Errorf("after it: making %v, %d loading", d.m.kern.mk, d.m.loading)
			}
		})
	}
}

// TestMenuconfigNoTree: a dashboard without a source cache says so.
func TestMenuconfigNoTree(t *testing.T) {
	d := kernelDriver(t, newFake(t), 80, 24, nil)
	d.keys("4", "c")
	if d.m.prompt.active || !strings.Contains(d.screen(), "no kernel source cache") {
		t.Errorf("c without a tree:\n%s", d.screen())
	}
}

// TestMenuconfigCancel: esc while the source is on its way stops the
// fetch, and nothing is left behind.
func TestMenuconfigCancel(t *testing.T) {
	stopped := make(chan struct{})
	d := kernelDriver(t, newFake(t), 80, 24, func(ctx context.Context, k *kernel.Kernel) (string, error) {
		<-ctx.Done()
		close(stopped)
		return "", ctx.Err()
	})
	d.keys("4", "c", "enter", "enter")
	if d.m.kern.mk == nil || !strings.Contains(d.screen(), "esc cancels") {
		t.Fatalf("no fetch on its way:\n%s", d.screen())
	}
	d.keys("esc")
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("esc did not stop the fetch")
	}
	if !d.until(func() bool { return d.m.loading == 0 }, 5*time.Second) {
		t.Errorf("%d queries in flight after the fetch stopped", d.m.loading)
	}
	if s := d.screen(); d.m.kern.mk != nil || d.m.page != pageKernels || !strings.Contains(s, "cancelled: no kernel made") || strings.Contains(s, "error") {
		t.Errorf("after esc: making %v:\n%s", d.m.kern.mk, s)
	}
}

// TestRawFixes: a CVE's raw fixes are the first patch's revision 1 on
// each kernel, one diff shown once for the kernels that share it, the
// page's kernel's first.
func TestRawFixes(t *testing.T) {
	f := newFake(t)
	p1 := f.find("a1b2c3d4e5f60001")
	other := clone(p1)
	other.ID, other.Kernel = "f1b2c3d4e5f60009", "tiny2"
	other.Revisions = []patch.Revision{p1.Revisions[0]}
	other.Revisions[0].Patch = other.ID
	third := clone(p1)
	third.ID, third.Kernel = "f1b2c3d4e5f6000a", "cloud"
	third.Revisions = []patch.Revision{{Patch: third.ID, Rev: 1, Source: "backport.diff", Diff: []byte("+other\n")}}
	// The newer revision 2 of tiny's first patch is not its raw fix.
	p1.Revisions = append(p1.Revisions, patch.Revision{Patch: p1.ID, Rev: 2, Source: "edit", Diff: []byte("+edited\n")})
	f.wf.patches = append([]*service.PatchDetail{&third}, append(f.wf.patches, &other)...)
	d := newDriver(t, f, 120, 40)
	d.m.cve.id, d.m.cve.kernel = "CVE-2026-64317", "tiny2"
	msg := runQuery(t, d.m.cve.loadFixes(d.m)).(fixesMsg)
	var got []string
	for _, fx := range msg.fixes {
		got = append(got, fmt.Sprintf("%v %s %s %d", fx.kernels, fx.patch, fx.source, len(fx.diff)))
	}
	n := len(p1.Revisions[0].Diff)
	want := []string{fmt.Sprintf("[tiny tiny2] a1b2c3d4e5f60001 CVE-2026-64317.patch %d", n), "[cloud] f1b2c3d4e5f6000a backport.diff 7"}
	if msg.err != nil || !slices.Equal(got, want) {
		t.Errorf("raw fixes %q (%v), want %q", got, msg.err, want)
	}
}
