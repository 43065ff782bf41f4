package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLoadSettingsFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	for _, env := range []string{EnvConfig, EnvDataDir, EnvCacheDir, EnvDB, EnvSource} {
		t.Setenv(env, "")
	}
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file     string
		warnings []string
		err      string
	}{
		{write("ok.toml", "db = \"/x.db\"\n"), nil, ""},
		{write("typo.toml", "db = \"/x.db\"\ndta_dir = \"/d\"\n[dashboard]\nport = 8080\n"), []string{`unknown key "dta_dir"`, `unknown key "dashboard.port"`}, ""},
		{fifo, nil, "not a regular file"},
		{dir, nil, "not a regular file"},
		{"/dev/zero", nil, "not a regular file"},
		{filepath.Join(dir, "missing.toml"), nil, "no such file"},
	}
	for _, tt := range tests {
		c, err := Load(Flags{ConfigFile: tt.file})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("Load(%s): %v, want an error naming the file and %q", tt.file, err, tt.err)
			}
			continue
		}
		if err != nil || c.DB != "/x.db" || len(c.Warnings) != len(tt.warnings) {
			t.Errorf("Load(%s) = %+v, %v", tt.file, c, err)
			continue
		}
		for i, w := range tt.warnings {
			if !strings.Contains(c.Warnings[i], w) || !strings.Contains(c.Warnings[i], tt.file) {
				t.Errorf("Load(%s): warning %q, want one naming the file and %s", tt.file, c.Warnings[i], w)
			}
		}
	}
	// No file at the default place is fine.
	if _, err := Load(Flags{}); err != nil {
		t.Errorf("Load without a settings file: %v", err)
	}
}
