package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/frontend/cli"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// hermetic points the settings at an empty place and returns the global
// flags of a fresh data directory.
func hermetic(t *testing.T) (dir string, g []string) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("TUXTAPE_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	return dir, []string{"--data-dir", dir, "--cache-dir", filepath.Join(dir, "cache"), "-q"}
}

// runQuick is run with a deadline: the inputs below once blocked or spun.
func runQuick(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code        int
		out, errout string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errout := run(t, args...)
		done <- result{code, out, errout}
	}()
	select {
	case r := <-done:
		return r.code, r.out, r.errout
	case <-time.After(10 * time.Second):
		t.Fatalf("tuxtape %v: still running after 10s", args)
		return 0, "", ""
	}
}

func tinyconfig(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/tinyconfig-x86_64.config")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUnreadableInputs: devices, FIFOs and directories where a file is
// meant are refused at once, naming the path and what it is.
func TestUnreadableInputs(t *testing.T) {
	dir, g := hermetic(t)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, filepath.Join(dir, "tiny.config"), tinyconfig(t))
	tarball := writeFile(t, filepath.Join(dir, "linux.tar.xz"), []byte("x"))
	add := append(g, "kernel", "add", "k", "--release", "6.1.176-x", "--version", "6.1.176", "--source", tarball)
	for _, tc := range []struct{ path, kind string }{
		{"/dev/zero", "a character device"},
		{"/dev/urandom", "a character device"},
		{fifo, "a FIFO"},
		{dir, "a directory"},
	} {
		for _, args := range [][]string{
			append(add, "--kconfig", tc.path),
			append(add, "--config", tc.path), // the old spelling
			append(add, "--kconfig", conf, "--fixed", tc.path),
			append(g, "patch", "build", "--fix", tc.path, "-o", filepath.Join(dir, "x.ko"), "--kernel", "nope"),
			append(g, "patch", "build", "--source", tarball, "--kconfig", tc.path, "--headers", dir, "--symbols", tarball, "--modules", dir,
				"--fix", writeFile(t, filepath.Join(dir, "ok.patch"), []byte("--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n")), "-o", filepath.Join(dir, "x.ko")),
		} {
			code, _, stderr := runQuick(t, args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.path+" is "+tc.kind) {
				t.Errorf("tuxtape %v: exit %d, %q; want exit %d naming %s as %s", args[len(g):], code, stderr, cli.ExitUsage, tc.path, tc.kind)
			}
		}
	}
}

// TestFixFiles: a fix that is not a unified diff is refused when read,
// naming the file, instead of coming back as "no functional change".
func TestFixFiles(t *testing.T) {
	dir, g := hermetic(t)
	for _, tc := range []struct {
		name string
		data string
		msg  string
	}{
		{"binary.patch", "\x7fELF\x00\x00\x01--- a\n+++ b\n", "binary"},
		{"prose.patch", "This fixes the bug.\n-- \nsigned\n", "not a unified diff"},
		{"empty.patch", "", "not a unified diff"},
	} {
		p := writeFile(t, filepath.Join(dir, tc.name), []byte(tc.data))
		code, _, stderr := runQuick(t, append(g, "patch", "build", "--kernel", "nope", "--fix", p, "-o", filepath.Join(dir, "x.ko"))...)
		if code != cli.ExitUsage || !strings.Contains(stderr, p) || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%s: exit %d, %q; want exit %d naming the file, %q", tc.name, code, stderr, cli.ExitUsage, tc.msg)
		}
	}
}

// TestKernelAddChecks: the config must be a kernel config for the kernel's
// architecture, and the source something a kernel can be built from.
func TestKernelAddChecks(t *testing.T) {
	dir, g := hermetic(t)
	tiny := tinyconfig(t)
	conf := func(name string, edit func(string) string) string {
		return writeFile(t, filepath.Join(dir, name), []byte(edit(string(tiny))))
	}
	x86 := conf("x86.config", func(s string) string { return s })
	// Debian's configs name the source architecture, x86, in the header.
	debianHeader := conf("debian.config", func(s string) string {
		return strings.Replace(s, "# Linux/x86_64 6.1.176", "# Linux/x86 6.1.176", 1)
	})
	arm64 := conf("arm64.config", func(s string) string {
		s = strings.Replace(s, "# Linux/x86_64 6.1.176", "# Linux/arm64 6.1.176", 1)
		return strings.Replace(s, "CONFIG_X86_64=y", "CONFIG_ARM64=y", 1)
	})
	arm64Symbols := conf("arm64-symbols.config", func(s string) string { return strings.Replace(s, "CONFIG_X86_64=y", "CONFIG_ARM64=y", 1) })
	noArch := writeFile(t, filepath.Join(dir, "two-lines.config"), []byte("CONFIG_MODULES=y\nCONFIG_LIVEPATCH=y\n"))
	tarball := writeFile(t, filepath.Join(dir, "linux-6.1.176.tar.xz"), []byte("x"))
	plain := filepath.Join(dir, "plain")
	gitDir := filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "linux-6.1.176")
	for _, d := range []string{plain, filepath.Join(gitDir, ".git"), tree} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(tree, "Makefile"), []byte("VERSION = 6\n"))
	writeFile(t, filepath.Join(tree, "Kbuild"), []byte("\n"))
	n := 0
	for _, tc := range []struct {
		release, source, config string
		extra                   []string
		code                    int
		msg                     string
	}{
		{"6.1.0-50-cloud-amd64", tarball, x86, nil, 0, "x86_64"},
		{"6.1.0-50-cloud-amd64", tarball, debianHeader, nil, 0, "x86_64"},
		{"6.1.0-50-arm64", tarball, arm64, nil, 0, "arm64"}, // the release's architecture
		{"6.1.176-custom", tarball, arm64, []string{"--arch", "aarch64"}, 0, "arm64"},
		{"6.1.0-50-cloud-amd64", tarball, arm64, nil, cli.ExitUsage, "the config is for arm64, not x86_64"},
		{"6.1.176-custom", tarball, arm64, nil, cli.ExitUsage, "the config is for arm64, not x86_64"},
		{"6.1.0-50-cloud-amd64", tarball, arm64Symbols, nil, cli.ExitUsage, "header says Linux/x86_64 but it sets CONFIG_ARM64"},
		{"6.1.0-50-cloud-amd64", tarball, noArch, nil, cli.ExitUsage, "not a kernel config for any architecture"},
		{"6.1.0-50-cloud-amd64", tarball, x86, []string{"--arch", "arm64"}, cli.ExitUsage, "Debian x86_64 kernel"},
		{"6.1.176-custom", tarball, x86, []string{"--arch", "vax"}, cli.ExitUsage, `--arch "vax"`},
		{"6.1.176-custom", plain, x86, nil, cli.ExitUsage, plain + " is a directory without a top-level Makefile"},
		{"6.1.176-custom", gitDir, x86, nil, cli.ExitUsage, "is a git repository: give the tag, branch or commit to build with --ref"},
		{"6.1.176-custom", tree, x86, nil, 0, "added kernel"},
		{"6.1.176-custom", filepath.Join(dir, "later.tar.xz"), x86, nil, 0, "added kernel"}, // put in place later
		{"6.1.176-custom", "/dev/null", x86, nil, cli.ExitUsage, "/dev/null is a character device, not a tarball"},
	} {
		n++
		name := "k" + strings.Repeat("x", n)
		args := append(append(g, "kernel", "add", name, "--release", tc.release, "--version", "6.1.176", "--source", tc.source, "--kconfig", tc.config), tc.extra...)
		code, stdout, stderr := runQuick(t, args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.msg) {
			t.Errorf("kernel add --release %s --source %s --kconfig %s %v: exit %d, %s%s; want exit %d mentioning %q",
				tc.release, filepath.Base(tc.source), filepath.Base(tc.config), tc.extra, code, stdout, stderr, tc.code, tc.msg)
		}
	}
}

// TestConfigSpellings: --kconfig is the kernel's .config, --config after
// the subcommand its deprecated name; the settings file is --settings, or
// --config before the subcommand.
func TestConfigSpellings(t *testing.T) {
	dir, g := hermetic(t)
	conf := writeFile(t, filepath.Join(dir, "tiny.config"), tinyconfig(t))
	tarball := writeFile(t, filepath.Join(dir, "linux.tar.xz"), []byte("x"))
	settings := func(name string) (file, db string) {
		db = filepath.Join(dir, name+".db")
		return writeFile(t, filepath.Join(dir, name+".toml"), []byte("db = \""+db+"\"\n")), db
	}
	add := func(name string) []string {
		return []string{"kernel", "add", name, "--release", "6.1.176-x", "--version", "6.1.176", "--source", tarball}
	}
	dbHas := func(db, kernel string) bool {
		code, stdout, _ := run(t, append(g, "--db", db, "kernel", "show", kernel, "--json")...)
		return code == 0 && strings.Contains(stdout, `"name": "`+kernel+`"`)
	}
	s1, db1 := settings("global-config")
	s2, db2 := settings("settings")
	s3, db3 := settings("both")
	s4, db4 := settings("list")
	for _, tc := range []struct {
		args       []string
		db, kernel string
		deprecated bool
	}{
		{append(append([]string{"--config", s1}, g...), append(add("a"), "--kconfig", conf)...), db1, "a", false},
		{append(append([]string{"--settings=" + s2}, g...), append(add("b"), "--kconfig", conf)...), db2, "b", false},
		{append(append([]string{"--config=" + s3}, g...), append(add("c"), "--config", conf)...), db3, "c", true},
		{append(append([]string{}, g...), append(add("d"), "--settings", s4, "--config", conf)...), db4, "d", true},
	} {
		code, _, stderr := runQuick(t, tc.args...)
		if code != 0 {
			t.Errorf("tuxtape %v: exit %d: %s", tc.args, code, stderr)
			continue
		}
		if !dbHas(tc.db, tc.kernel) {
			t.Errorf("tuxtape %v: kernel %s is not in the settings file's database %s", tc.args, tc.kernel, tc.db)
		}
		if got := strings.Contains(stderr, "deprecated: use --kconfig"); got != tc.deprecated {
			t.Errorf("tuxtape %v: deprecation note %v, want %v: %q", tc.args, got, tc.deprecated, stderr)
		}
	}
	// --config stays the settings file where no subcommand flag hides it.
	s5, db5 := settings("cve")
	if code, _, stderr := run(t, append(g, "cve", "list", "--config", s5)...); code != 0 {
		t.Errorf("cve list --config: exit %d: %s", code, stderr)
	} else if _, err := os.Stat(db5); err != nil {
		t.Errorf("cve list --config %s: its database was not used: %v", s5, err)
	}
	if code, _, stderr := run(t, append(g, append(add("e"), "--kconfig", conf, "--config", conf)...)...); code != cli.ExitUsage || !strings.Contains(stderr, "once") {
		t.Errorf("--kconfig and --config: exit %d, %q", code, stderr)
	}
	code, stdout, _ := run(t, "kernel", "add", "--help")
	if code != 0 || !strings.Contains(stdout, "--kconfig") || !strings.Contains(stdout, "--settings") || strings.Contains(stdout, "--config string") {
		t.Errorf("kernel add --help: exit %d:\n%s", code, stdout)
	}
}

// TestTerminalEscapes: control characters in records reach the terminal
// escaped, and the JSON output exactly as stored.
func TestTerminalEscapes(t *testing.T) {
	dir, g := hermetic(t)
	const evil = "\x1b]0;owned\a\x1b[2J\rnul\x00 \u202e"
	const shown = `\e]0;owned\x07\e[2J\rnul\x00 \u202e`
	db := filepath.Join(dir, "tuxtape.db")
	ctx := context.Background()
	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	rec := vulns.Record{ID: "CVE-2099-0001", Status: vulns.StatusAnnounced, Source: vulns.SourceAnnounce,
		Title: "net: fix " + evil, Description: "line one " + evil + "\nline two", ProgramFiles: []string{"net/x" + evil + ".c"},
		FixCommits: []string{"0123456789ab"}}
	if _, err := st.ApplyAnnouncements(ctx, []vulns.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	raw := func(s string) bool { return strings.ContainsAny(s, "\x1b\a\r\x00\u202e") }
	for _, args := range [][]string{{"cve", "show", rec.ID}, {"cve", "list"}} {
		code, stdout, stderr := run(t, append(g, args...)...)
		if code != 0 || raw(stdout) || !strings.Contains(stdout, shown) {
			t.Errorf("tuxtape %v: exit %d, raw control characters %v, escaped %v:\n%q%s", args, code, raw(stdout), strings.Contains(stdout, shown), stdout, stderr)
		}
	}
	code, stdout, _ := run(t, append(g, "cve", "show", rec.ID, "--json")...)
	var got struct{ Title, Description string }
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Title != rec.Title || got.Description != rec.Description {
		t.Errorf("cve show --json: exit %d, %v: title %q, want %q", code, err, got.Title, rec.Title)
	}
	// A kernel whose source path holds an escape, and an error naming one.
	src := writeFile(t, filepath.Join(dir, "linux\x1b]0;owned\a.tar.xz"), []byte("x")) // a name holds no NUL
	conf := writeFile(t, filepath.Join(dir, "tiny.config"), tinyconfig(t))
	if code, _, stderr := run(t, append(g, "kernel", "add", "k", "--release", "6.1.176-x", "--version", "6.1.176", "--source", src, "--kconfig", conf)...); code != 0 {
		t.Fatalf("kernel add: exit %d: %s", code, stderr)
	}
	for _, args := range [][]string{{"kernel", "show", "k"}, {"kernel", "list"}} {
		if code, stdout, stderr := run(t, append(g, args...)...); code != 0 || raw(stdout) || !strings.Contains(stdout, `\e]0;owned`) {
			t.Errorf("tuxtape %v: exit %d: %q%s", args, code, stdout, stderr)
		}
	}
	if code, _, stderr := run(t, append(g, "kernel", "show", "k"+evil)...); code != cli.ExitNotFound || raw(stderr) {
		t.Errorf("kernel show with an escape in the name: exit %d, %q", code, stderr)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestWriteErrors: a failed write on standard output is an error.
func TestWriteErrors(t *testing.T) {
	dir, g := hermetic(t)
	mbox := writeFile(t, filepath.Join(dir, "empty.mbox"), nil)
	for _, args := range [][]string{
		{"cve", "list"},
		{"cve", "list", "--json"},
		{"kernel", "list"},
		{"sync", "--announce", mbox},
		{"--help"},
	} {
		var stderr bytes.Buffer
		code := cli.Run(context.Background(), append(g, args...), failWriter{}, &stderr)
		if code != cli.ExitError || !strings.Contains(stderr.String(), "disk full") {
			t.Errorf("tuxtape %v > failing writer: exit %d, %q; want exit %d", args, code, stderr.String(), cli.ExitError)
		}
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	var stderr bytes.Buffer
	if code := cli.Run(context.Background(), append(g, "cve", "list"), full, &stderr); code != cli.ExitError {
		t.Errorf("cve list > /dev/full: exit %d, %q", code, stderr.String())
	}
}

// TestMessages: not-found hints fit what is missing; unknown settings
// keys are named; bad filter values are usage errors.
func TestMessages(t *testing.T) {
	dir, g := hermetic(t)
	for _, tc := range []struct {
		args      []string
		code      int
		want, not string
	}{
		{[]string{"kernel", "show", "nope"}, cli.ExitNotFound, "tuxtape kernel list", "tuxtape sync"},
		{[]string{"kernel", "rm", "nope"}, cli.ExitNotFound, "tuxtape kernel add", "tuxtape sync"},
		{[]string{"cve", "list", "--kernel", "nope"}, cli.ExitNotFound, "tuxtape kernel add", "tuxtape sync"},
		{[]string{"cve", "show", "CVE-2099-0002"}, cli.ExitNotFound, "tuxtape sync", "kernel add"},
		{[]string{"cve", "list", "--min-cvss", "NaN"}, cli.ExitUsage, "--min-cvss", ""},
		{[]string{"cve", "list", "--min-cvss", "Inf"}, cli.ExitUsage, "--min-cvss", ""},
		{[]string{"cve", "list", "--since", "106752d"}, cli.ExitUsage, "at most 106751d", ""},
		{[]string{"cve", "list", "--since", "300000d"}, cli.ExitUsage, "at most 106751d", ""},
		{[]string{"cve", "list", "--since", "106751d"}, 0, "CVE", ""},
	} {
		code, stdout, stderr := run(t, append(g, tc.args...)...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) || (tc.not != "" && strings.Contains(stderr, tc.not)) {
			t.Errorf("tuxtape %v: exit %d, %q; want exit %d with %q and without %q", tc.args, code, stderr, tc.code, tc.want, tc.not)
		}
	}
	settings := writeFile(t, filepath.Join(dir, "s.toml"), []byte("dta_dir = \"/x\"\n[dashboard]\nport = 1\n"))
	code, _, stderr := run(t, append(g, "--settings", settings, "cve", "list")...)
	if code != 0 || !strings.Contains(stderr, settings+`: unknown key "dta_dir"`) || !strings.Contains(stderr, `"dashboard.port"`) {
		t.Errorf("unknown settings keys: exit %d, %q", code, stderr)
	}
}
