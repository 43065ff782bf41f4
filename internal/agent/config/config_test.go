package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func resolve(t *testing.T, file string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := AddFlags(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "agent.toml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	} else {
		args = append([]string{"--config", filepath.Join(t.TempDir(), "empty.toml")}, args...)
		os.WriteFile(args[1], nil, 0o600)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.Resolve()
}

func TestPrecedence(t *testing.T) {
	t.Setenv("TUXTAPE_TOKEN", "")
	file := `metadata_url = "https://archive/metadata/"
ring = "canary"
token = "from-file"
interval = "15m"
rollback_window = "2m"
state_dir = "/srv/agent"
`
	c, err := resolve(t, file, "--ring", "stable")
	if err != nil {
		t.Fatal(err)
	}
	if c.Ring != "stable" || c.MetadataURL != "https://archive/metadata/" || c.Token != "from-file" ||
		c.Interval.Duration != 15*time.Minute || c.Window.Duration != 2*time.Minute || c.StateDir != "/srv/agent" {
		t.Errorf("resolved = %+v", c)
	}
	t.Setenv("TUXTAPE_TOKEN", "from-env")
	if c, _ := resolve(t, file); c.Token != "from-env" {
		t.Errorf("token = %q, want the environment's over the file's", c.Token)
	}
	if c, _ := resolve(t, file, "--token", "from-flag"); c.Token != "from-flag" {
		t.Errorf("token = %q, want the flag's", c.Token)
	}
	t.Setenv("TUXTAPE_TOKEN", "")
	c, err = resolve(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != DefaultStateDir || c.Interval.Duration != DefaultInterval || c.Window.Duration != DefaultWindow || c.MachineID == "" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestFileErrors(t *testing.T) {
	if _, err := resolve(t, "rign = \"x\"\n"); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("a misspelt key: %v", err)
	}
	if _, err := resolve(t, "interval = \"soon\"\n"); err == nil {
		t.Error("a bad duration: no error")
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := AddFlags(fs)
	fs.Parse([]string{"--config", "/nonexistent/agent.toml"})
	if _, err := f.Resolve(); err == nil {
		t.Error("a named settings file that is missing: no error")
	}
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("tt1.a.b\n"), 0o600)
	t.Setenv("TUXTAPE_TOKEN", "")
	if c, err := resolve(t, "token_file = \""+tok+"\"\n"); err != nil || c.Token != "tt1.a.b" {
		t.Errorf("token_file: %q, %v", c.Token, err)
	}
}
