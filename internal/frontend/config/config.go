// Package config resolves TuxTape's settings in one place, with the
// precedence flag > environment (TUXTAPE_*) > TOML file > default.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/BurntSushi/toml"
)

// Config holds the settings every subcommand shares.
type Config struct {
	DataDir  string `toml:"data_dir"`
	CacheDir string `toml:"cache_dir"`
	DB       string `toml:"db"`
	// Source is the CVE repository to sync from.
	Source string `toml:"source"`
	// Server is a tuxtape server to send the queries to (host:port), with
	// the bearer token, the CA to trust, and a client certificate for
	// mutual TLS.
	Server string `toml:"server"`
	Token  string `toml:"token"`
	CA     string `toml:"ca"`
	Cert   string `toml:"cert"`
	Key    string `toml:"key"`
	// Warnings are problems of the settings file that did not stop the
	// load, such as keys it does not know (a typo would otherwise leave a
	// setting at its default without a word).
	Warnings []string `toml:"-"`
}

// Env names.
const (
	EnvDataDir  = "TUXTAPE_DATA_DIR"
	EnvCacheDir = "TUXTAPE_CACHE_DIR"
	EnvDB       = "TUXTAPE_DB"
	EnvConfig   = "TUXTAPE_CONFIG"
	EnvSource   = "TUXTAPE_SOURCE"
	EnvServer   = "TUXTAPE_SERVER"
	EnvToken    = "TUXTAPE_TOKEN"
	EnvCA       = "TUXTAPE_CA"
	EnvCert     = "TUXTAPE_CERT"
	EnvKey      = "TUXTAPE_KEY"
)

// Flags are the values given on the command line; empty means not given.
type Flags struct {
	ConfigFile, DataDir, CacheDir, DB, Source string
	Server, Token, CA, Cert, Key              string
}

// DefaultFile is the config file path: $XDG_CONFIG_HOME/tuxtape/config.toml.
func DefaultFile() string {
	return filepath.Join(xdg("XDG_CONFIG_HOME", ".config"), "tuxtape", "config.toml")
}

// Load resolves the configuration. A missing default config file is fine;
// a missing file that was asked for by name is not.
func Load(f Flags) (Config, error) {
	var c Config
	file := first(f.ConfigFile, os.Getenv(EnvConfig))
	explicit := file != ""
	if !explicit {
		file = DefaultFile()
	}
	data, err := readFile(file)
	if err != nil && (!errors.Is(err, os.ErrNotExist) || explicit) {
		return Config{}, fmt.Errorf("read config %s: %w", file, err)
	}
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return Config{}, fmt.Errorf("read config %s: %w", file, err)
	}
	undecoded := md.Undecoded()
	for i, k := range undecoded {
		// A table is listed before its keys: name the keys only.
		if i+1 < len(undecoded) && strings.HasPrefix(undecoded[i+1].String(), k.String()+".") {
			continue
		}
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s: unknown key %q ignored (known: data_dir, cache_dir, db, source, server, token, ca, cert, key)", file, k.String()))
	}
	c.DataDir = first(f.DataDir, os.Getenv(EnvDataDir), c.DataDir, filepath.Join(xdg("XDG_DATA_HOME", ".local/share"), "tuxtape"))
	c.CacheDir = first(f.CacheDir, os.Getenv(EnvCacheDir), c.CacheDir, filepath.Join(xdg("XDG_CACHE_HOME", ".cache"), "tuxtape"))
	c.DB = first(f.DB, os.Getenv(EnvDB), c.DB, filepath.Join(c.DataDir, "tuxtape.db"))
	c.Source = first(f.Source, os.Getenv(EnvSource), c.Source)
	c.Server = first(f.Server, os.Getenv(EnvServer), c.Server)
	c.Token = first(f.Token, os.Getenv(EnvToken), c.Token)
	c.CA = first(f.CA, os.Getenv(EnvCA), c.CA)
	c.Cert = first(f.Cert, os.Getenv(EnvCert), c.Cert)
	c.Key = first(f.Key, os.Getenv(EnvKey), c.Key)
	return c, nil
}

// maxFile bounds a settings file; real ones are a few lines.
const maxFile = 1 << 20

// readFile reads a settings file, refusing what is not a regular file
// (opened with O_NONBLOCK, so a FIFO cannot block) or too large to be one.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s): give the TOML file itself", st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err == nil && len(data) > maxFile {
		err = fmt.Errorf("larger than %d MiB: not a settings file", maxFile>>20)
	}
	return data, err
}

// MirrorDir is where the CVE repository's mirror is kept.
func (c Config) MirrorDir() string { return filepath.Join(c.DataDir, "vulns.git") }

func xdg(env, fallback string) string {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, fallback)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
