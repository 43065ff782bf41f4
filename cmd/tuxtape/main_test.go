package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
)

// TestSecondInterrupt runs the real binary on long operations and checks
// that a second SIGINT ends it at once with exit code 130, whatever it is
// doing: a full sync of the CNA bundle into a fresh data directory, and
// announcements read from a pipe whose writer stays open (a read no
// context can cancel).
func TestSecondInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := testenv.BuildTuxtape(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args func(t *testing.T) []string
		pipe bool // stdin is a pipe the test keeps open
	}{
		{"full sync", func(t *testing.T) []string { return []string{"sync", "--source", testenv.Bundle(t)} }, false},
		{"announcements from a pipe", func(*testing.T) []string { return []string{"sync", "--announce", "-"} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			cmd := exec.Command(bin, append([]string{"--data-dir", data}, tt.args(t)...)...)
			cmd.Env = append(os.Environ(), "TUXTAPE_CONFIG=", "XDG_CONFIG_HOME="+filepath.Join(data, "xdg"))
			// Its own process group, so what it starts (git) can be
			// killed with it when the test ends.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if tt.pipe {
				w, err := cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("ended before the signals: %v\n%s", err, stderr.String())
			case <-time.After(3 * time.Second): // well into the work
			}
			cmd.Process.Signal(os.Interrupt)
			time.Sleep(200 * time.Millisecond)
			cmd.Process.Signal(os.Interrupt)
			start := time.Now()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 130 {
					t.Errorf("after two SIGINTs: %v, want exit code 130\n%s", err, stderr.String())
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("stderr does not say it was interrupted: %q", stderr.String())
				}
				t.Logf("ended %s after the second SIGINT", time.Since(start).Round(time.Millisecond))
			case <-time.After(5 * time.Second):
				t.Fatalf("still running 5s after the second SIGINT\n%s", stderr.String())
			}
		})
	}
}
