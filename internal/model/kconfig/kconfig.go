package kconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Config is a parsed kernel .config.
type Config struct {
	// Values maps each set symbol, with its CONFIG_ prefix, to its value as
	// written in the file: "y", "m", "123", "0x1f", or a string with its
	// double quotes and escapes kept ("\"gcc-12\""). Symbols that are not
	// set are absent.
	Values map[string]string
	// Arch and Version come from the "# Linux/x86 6.1.176 Kernel
	// Configuration" header; empty when the file has none.
	Arch, Version string
}

// Get returns a symbol's value ("" when it is not set). name may be given
// with or without its CONFIG_ prefix.
func (c Config) Get(name string) string {
	if !strings.HasPrefix(name, "CONFIG_") {
		name = "CONFIG_" + name
	}
	return c.Values[name]
}

// ErrNotConfig is wrapped by the errors of ParseConfig for input that is
// not a kernel .config.
var ErrNotConfig = errors.New("not a kernel .config")

// maxConfigLine bounds a line; real ones (long CONFIG_CMDLINE strings
// included) stay far below it.
const maxConfigLine = 1 << 20

var configHeader = regexp.MustCompile(`^# Linux/(\S+) (\S+) Kernel Configuration$`)

// ReadConfig reads and parses the .config file at path.
func ReadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("read kernel config: %w", err)
	}
	defer f.Close()
	c, err := ParseConfig(f)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses a kernel .config: CONFIG_X=value lines, "# CONFIG_X
// is not set" lines, other comments and blank lines. Anything else is an
// error naming the line, and so is input without a single CONFIG_ line.
func ParseConfig(r io.Reader) (Config, error) {
	c := Config{Values: make(map[string]string)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxConfigLine)
	n, symbols := 0, 0
	for sc.Scan() {
		n++
		raw := sc.Bytes()
		// A NUL or invalid UTF-8 means binary input (a vmlinuz, a .ko, a
		// tarball): say so instead of complaining about its "syntax".
		if bytes.IndexByte(raw, 0) >= 0 || !utf8.Valid(raw) {
			return Config{}, fmt.Errorf("%w: line %d holds binary data", ErrNotConfig, n)
		}
		line := strings.TrimRight(string(raw), " \t\r")
		if line == "" {
			continue
		}
		if line[0] == '#' {
			if m := configHeader.FindStringSubmatch(line); m != nil && c.Version == "" {
				c.Arch, c.Version = m[1], m[2]
			}
			if sym, ok := strings.CutPrefix(line, "# "); ok {
				if sym, ok := strings.CutSuffix(sym, " is not set"); ok && strings.HasPrefix(sym, "CONFIG_") {
					if !validSymbol(sym) {
						return Config{}, configLineError(n, line, "bad symbol name")
					}
					delete(c.Values, sym) // the last line about a symbol wins
					symbols++
				}
			}
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return Config{}, configLineError(n, line, `expected CONFIG_NAME=value, "# CONFIG_NAME is not set", a comment or a blank line`)
		}
		if !strings.HasPrefix(name, "CONFIG_") || !validSymbol(name) {
			return Config{}, configLineError(n, line, fmt.Sprintf("bad symbol name %q (want CONFIG_ followed by letters, digits and _)", name))
		}
		if err := checkConfigValue(value); err != nil {
			return Config{}, configLineError(n, line, err.Error())
		}
		symbols++
		if value == "n" {
			// Kconfig reads =n as "not set", and Make never sees it.
			delete(c.Values, name)
			continue
		}
		c.Values[name] = value
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Config{}, fmt.Errorf("%w: line %d is longer than %d bytes", ErrNotConfig, n+1, maxConfigLine)
		}
		return Config{}, fmt.Errorf("read kernel config: %w", err)
	}
	if symbols == 0 {
		return Config{}, fmt.Errorf("%w: no CONFIG_ lines in %d lines", ErrNotConfig, n)
	}
	return c, nil
}

// Unquote removes the quotes and backslash escapes of a string value.
func Unquote(v string) string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func configLineError(n int, line, what string) error {
	if len(line) > 80 {
		line = line[:77] + "..."
	}
	return fmt.Errorf("%w: line %d: %s: %q", ErrNotConfig, n, what, line)
}

func validSymbol(s string) bool {
	rest := strings.TrimPrefix(s, "CONFIG_")
	if rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkConfigValue accepts what Kconfig writes: y/m/n, a decimal or hex
// number, or a double-quoted string with \" and \\ escapes.
func checkConfigValue(v string) error {
	switch {
	case v == "":
		return errors.New("empty value")
	case v == "y" || v == "m" || v == "n":
		return nil
	case v[0] == '"':
		for i := 1; i < len(v); i++ {
			switch v[i] {
			case '\\':
				i++
			case '"':
				if i != len(v)-1 {
					return errors.New("text after the closing quote")
				}
				return nil
			}
		}
		return errors.New("unterminated string")
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		if len(v) == 2 {
			return errors.New("bad hex number")
		}
		for _, c := range v[2:] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return errors.New("bad hex number")
			}
		}
		return nil
	default:
		d := strings.TrimPrefix(v, "-")
		if d == "" {
			return errors.New("bad number")
		}
		for _, c := range d {
			if c < '0' || c > '9' {
				return fmt.Errorf("bad value %q (want y, m, a number or a quoted string)", v)
			}
		}
		return nil
	}
}
