package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/agent/hoststate"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	t.Setenv("TUXTAPE_AGENT_CONFIG", filepath.Join(t.TempDir(), "none.toml"))
	os.WriteFile(os.Getenv("TUXTAPE_AGENT_CONFIG"), nil, 0o600)
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// sysfs makes a livepatch tree with one enabled patch.
func sysfs(t *testing.T, patch string) string {
	t.Helper()
	root := t.TempDir()
	if patch != "" {
		d := filepath.Join(root, patch)
		os.MkdirAll(filepath.Join(d, "vmlinux", "cmdline_proc_show,1"), 0o755)
		os.WriteFile(filepath.Join(d, "enabled"), []byte("1\n"), 0o644)
		os.WriteFile(filepath.Join(d, "transition"), []byte("0\n"), 0o644)
	}
	return root
}

func TestStatusExitCodes(t *testing.T) {
	release, err := uname()
	if err != nil {
		t.Fatal(err)
	}
	loaded := func(v int64) *hoststate.Applied {
		return &hoststate.Applied{Version: v, Module: "tt_v2", CVEs: []string{"CVE-2026-0001"}, Confirmed: true, At: time.Now()}
	}
	tests := []struct {
		name     string
		sysfs    string // "" : no livepatch support
		poll     *hoststate.Poll
		loaded   *hoststate.Applied
		want     int
		wantText string
	}{
		{"unsupported kernel", "", nil, nil, ExitUnsupported, "not supported"},
		{"never polled", "tt_v2", nil, loaded(2), ExitError, "never polled"},
		{"no patches", "none", &hoststate.Poll{Kernel: release, Result: "no_patches"}, nil, ExitNoPatches, "no patches"},
		{"up to date", "tt_v2", &hoststate.Poll{Kernel: release, Result: "up_to_date", Newest: 2}, loaded(2), ExitOK, "tt_v2@2"},
		{"update available", "tt_v2", &hoststate.Poll{Kernel: release, Result: "update_available", Newest: 3}, loaded(2), ExitUpdate, "update available (version 3)"},
		{"newest was rolled back", "tt_v2", &hoststate.Poll{Kernel: release, Result: "updated", Newest: 3}, loaded(2), ExitOK, "up to date"},
		{"last poll failed", "tt_v2", &hoststate.Poll{Kernel: release, Result: "error", Error: "archive unreachable"}, loaded(2), ExitError, "archive unreachable"},
		{"polled for another kernel", "tt_v2", &hoststate.Poll{Kernel: "5.10.0-1-amd64", Result: "up_to_date"}, loaded(2), ExitError, "never polled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			st := &hoststate.State{LastPoll: tt.poll}
			st.Kernel(release).Loaded = tt.loaded
			if tt.name == "newest was rolled back" {
				st.Kernel(release).MarkBad(hoststate.Bad{Version: 3, Reason: "WARNING"})
			}
			if err := (hoststate.Store{Dir: state}).Save(st); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(t.TempDir(), "absent")
			switch tt.sysfs {
			case "":
			case "none":
				root = sysfs(t, "")
			default:
				root = sysfs(t, tt.sysfs)
			}
			code, out, errs := run(t, "status", "--state-dir", state, "--sysfs-root", root, "--cmdline", "/dev/null")
			if code != tt.want || !strings.Contains(out, tt.wantText) {
				t.Errorf("status = %d\n%s%s\nwant %d and %q", code, out, errs, tt.want, tt.wantText)
			}
			code, out, _ = run(t, "status", "--json", "--state-dir", state, "--sysfs-root", root, "--cmdline", "/dev/null")
			var s Status
			if err := json.Unmarshal([]byte(out), &s); err != nil || s.ExitCode != code || code != tt.want {
				t.Errorf("status --json = %d %q (%v), want exit %d in both", code, out, err, tt.want)
			}
		})
	}
}

func TestHelpListsExitCodes(t *testing.T) {
	code, out, _ := run(t, "help")
	for _, want := range []string{"0  up to date", "1  error", "2  update available", "3  no patches", "4  unsupported kernel"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	if code != 0 {
		t.Errorf("help exit = %d", code)
	}
	if code, _, _ := run(t, "frobnicate"); code != ExitUsage {
		t.Errorf("unknown command exit = %d, want %d", code, ExitUsage)
	}
}

// TestPollWithoutArchive: a poll with nothing configured says so and
// fails; a kill switch on the command line never reaches the archive.
func TestPollWithoutArchive(t *testing.T) {
	state := t.TempDir()
	kmsgFile := filepath.Join(t.TempDir(), "kmsg")
	os.WriteFile(kmsgFile, nil, 0o644)
	code, _, errs := run(t, "poll", "--state-dir", state, "--sysfs-root", sysfs(t, ""), "--kmsg", kmsgFile, "--cmdline", "/dev/null")
	if code != ExitError || !strings.Contains(errs, "no archive configured") {
		t.Errorf("poll = %d, %q; want 1 and the missing archive named", code, errs)
	}
	// Unsupported kernel: exit 4, whatever the archive.
	code, _, _ = run(t, "poll", "--state-dir", state, "--sysfs-root", filepath.Join(state, "absent"), "--kmsg", kmsgFile, "--cmdline", "/dev/null")
	if code != ExitUnsupported {
		t.Errorf("poll on an unsupported kernel = %d, want %d", code, ExitUnsupported)
	}
}
