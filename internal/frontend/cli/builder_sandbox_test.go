package cli

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/sandbox"
)

// TestJobSandbox: the builder's --job-* flags become its sandbox, with
// the data and cache directories hidden; bad values are usage errors.
func TestJobSandbox(t *testing.T) {
	g := &Globals{}
	g.cfg.DataDir, g.cfg.CacheDir = "/srv/tuxtape/data", "/srv/tuxtape/cache"
	good := sandboxOptions{uid: 4242, memory: "2G", time: time.Minute, procs: 100, cpus: 1.5}
	c, err := jobSandbox(g, good)
	if err != nil {
		t.Fatal(err)
	}
	want := sandbox.Limits{Memory: 2 << 30, Time: time.Minute, Procs: 100, CPUs: 1.5, FileSize: sandbox.DefaultLimits.FileSize}
	if c.UID != 4242 || c.GID != 4242 || c.Limits != want {
		t.Errorf("jobSandbox = uid %d gid %d %+v, want 4242 4242 %+v", c.UID, c.GID, c.Limits, want)
	}
	for _, d := range []string{g.cfg.DataDir, g.cfg.CacheDir} {
		if !slices.Contains(c.Hide, d) {
			t.Errorf("jobSandbox hides %v, want %s among them", c.Hide, d)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*sandboxOptions)
	}{
		{"bad memory", func(o *sandboxOptions) { o.memory = "lots" }},
		{"no time", func(o *sandboxOptions) { o.time = 0 }},
		{"no processes", func(o *sandboxOptions) { o.procs = 0 }},
		{"negative cpus", func(o *sandboxOptions) { o.cpus = -1 }},
		{"root job uid", func(o *sandboxOptions) { o.uid = 0 }},
	} {
		o := good
		tc.edit(&o)
		if tc.name == "root job uid" && os.Geteuid() != 0 {
			continue // ignored by a rootless builder
		}
		if _, err := jobSandbox(g, o); err == nil {
			t.Errorf("%s: jobSandbox(%+v) succeeded", tc.name, o)
		}
	}
}
