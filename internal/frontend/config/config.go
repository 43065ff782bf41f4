// Package config resolves TuxTape's settings in one place, with the
// precedence flag > environment (TUXTAPE_*) > TOML file > default.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

// Config holds the settings every subcommand shares.
type Config struct {
	DataDir  string `toml:"data_dir"`
	CacheDir string `toml:"cache_dir"`
	DB       string `toml:"db"`
	// Source is the CVE repository to sync from.
	Source string `toml:"source"`
}

// Env names.
const (
	EnvDataDir  = "TUXTAPE_DATA_DIR"
	EnvCacheDir = "TUXTAPE_CACHE_DIR"
	EnvDB       = "TUXTAPE_DB"
	EnvConfig   = "TUXTAPE_CONFIG"
	EnvSource   = "TUXTAPE_SOURCE"
)

// Flags are the values given on the command line; empty means not given.
type Flags struct {
	ConfigFile, DataDir, CacheDir, DB, Source string
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
	if _, err := toml.DecodeFile(file, &c); err != nil {
		if !errors.Is(err, os.ErrNotExist) || explicit {
			return Config{}, fmt.Errorf("read config %s: %w", file, err)
		}
	}
	c.DataDir = first(f.DataDir, os.Getenv(EnvDataDir), c.DataDir, filepath.Join(xdg("XDG_DATA_HOME", ".local/share"), "tuxtape"))
	c.CacheDir = first(f.CacheDir, os.Getenv(EnvCacheDir), c.CacheDir, filepath.Join(xdg("XDG_CACHE_HOME", ".cache"), "tuxtape"))
	c.DB = first(f.DB, os.Getenv(EnvDB), c.DB, filepath.Join(c.DataDir, "tuxtape.db"))
	c.Source = first(f.Source, os.Getenv(EnvSource), c.Source)
	return c, nil
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
