package fixsource

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/build/debpkg"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

// The later package of the test kernel's branch: 6.1.187-1 is in this
// machine's apt archive (apt-cache madison linux-source-6.1).
const laterSpec = "debian:linux-source-6.1=6.1.187-1"

// realRecord reads a CVE's record from the CNA bundle as sync would.
func realRecord(t *testing.T, id string) vulns.Record {
	t.Helper()
	dir := filepath.Join(testenv.Checkout(t), "cve", "published", id[4:8])
	files := map[string][]byte{}
	for _, ext := range []string{"json", "dyad", "sha1"} {
		if b, err := os.ReadFile(filepath.Join(dir, id+"."+ext)); err == nil {
			files[ext] = b
		}
	}
	rec, err := vulns.Assemble(id, vulns.StatusPublished, files)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func debianSource(t *testing.T) (*Debian, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("reads the 6.1.176 tree and fetches linux-source-6.1 6.1.187-1 (140 MB)")
	}
	src := kernelenv.Source(t)
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := NewDebian(ctx, debpkg.Options{SeedDirs: filepath.SplitList(os.Getenv("TUXTAPE_DEB_DIRS"))}, filepath.Join(cache, "tuxtape"), laterSpec, DirFiles(src), nil)
	if err != nil {
		testenv.Missing(t, "Debian fix source %s: %v", laterSpec, err)
	}
	return d, src
}

// TestDebianFetch takes real CVEs' fixes from 6.1.187-1 and checks them
// against the corpus, which was made the same way: same bytes, same files,
// and they apply to the 6.1.176 tree.
func TestDebianFetch(t *testing.T) {
	d, src := debianSource(t)
	ctx := context.Background()
	for _, id := range []string{
		"CVE-2026-43216", // a header and two .c files in net/
		"CVE-2026-64547", // a one-line bounds check in a driver
		"CVE-2025-23131", // fs/dlm
	} {
		t.Run(id, func(t *testing.T) {
			rec := realRecord(t, id)
			start := time.Now()
			fix, err := d.Fetch(ctx, rec, "6.1.176")
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			t.Logf("%s: %d bytes in %v, files %v, fixed in %s", id, len(fix.Diff), time.Since(start).Round(time.Millisecond), fix.Files, fix.FixedVersion)
			want := corpusPatch(t, id)
			if string(fix.Diff) != string(want) {
				t.Errorf("Fetch(%s) diff differs from the corpus's:\n%s\nwant\n%s", id, fix.Diff, want)
			}
			if !reflect.DeepEqual(fix.Files, rec.ProgramFiles) || !reflect.DeepEqual(fix.Files, diffFiles(want)) {
				t.Errorf("Fetch(%s) files %v, programFiles %v, corpus %v", id, fix.Files, rec.ProgramFiles, diffFiles(want))
			}
			if fix.Kind != KindDebian || fix.Mainline || fix.From != "6.1.176" || fix.To != "6.1.187-1" || fix.Branch != "6.1" {
				t.Errorf("Fetch(%s) = %+v", id, fix)
			}
			cmd := exec.Command("patch", "--dry-run", "--batch", "--force", "-p1", "-d", src)
			cmd.Stdin = strings.NewReader(string(fix.Diff))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("the fix does not apply to 6.1.176: %v\n%s", err, out)
			}
		})
	}
}

func TestDebianFetchRefuses(t *testing.T) {
	d, _ := debianSource(t)
	ctx := context.Background()
	rec := realRecord(t, "CVE-2026-64547")
	tests := []struct {
		name    string
		version string
		edit    func(*vulns.Record)
		want    error
	}{
		{"already fixed", "6.1.180", nil, ErrAlreadyFixed},
		{"other branch", "6.6.100", nil, ErrBadInput},
		{"package not later", "6.1.190", nil, ErrBadInput},
		{"fixed after the package", "6.1.176", func(r *vulns.Record) {
			for i, b := range r.Branches {
				if strings.HasPrefix(b.FixedVersion, "6.1.") {
					r.Branches[i].FixedVersion = "6.1.190"
				}
			}
		}, ErrNotInSource},
		{"files unchanged", "6.1.176", func(r *vulns.Record) { r.ProgramFiles = []string{"kernel/sched/core.h"} }, ErrNotInSource},
		{"path outside", "6.1.176", func(r *vulns.Record) { r.ProgramFiles = []string{"../etc/passwd"} }, ErrBadInput},
	}
	for _, tt := range tests {
		r := rec
		r.Branches = append([]vulns.Branch(nil), rec.Branches...)
		if tt.edit != nil {
			tt.edit(&r)
		}
		if _, err := d.Fetch(ctx, r, tt.version); !errors.Is(err, tt.want) {
			t.Errorf("Fetch(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestDebianPrerequisites: a record whose programFiles miss the header the
// fix needs (as 19 corpus fixes do) gets a fix that does not compile; the
// finder reads gcc's complaint and finds the header's change in the same
// window.
func TestDebianPrerequisites(t *testing.T) {
	d, src := debianSource(t)
	ctx := context.Background()
	rec := realRecord(t, fibCVE)
	rec.ProgramFiles = []string{"net/core/fib_rules.c"}
	fix, err := d.Fetch(ctx, rec, "6.1.176")
	if err != nil {
		t.Fatal(err)
	}
	parts := splitPatch(corpusPatch(t, fibCVE))
	if string(fix.Diff) != parts["net/core/fib_rules.c"] {
		t.Fatalf("fix = %s, want the corpus's .c part", fix.Diff)
	}
	out := realGCC(t, "C.UTF-8", map[string]string{
		"net/core/fib_rules.c": "struct fib_rule { int refcnt; };\nint f(struct fib_rule *rule)\n{\n\treturn fib_rule_get_safe(rule);\n}\n",
	}, "net/core/fib_rules.c")
	missing := ParseCompilerErrors(out)
	start := time.Now()
	found, unresolved, err := d.Prerequisites(ctx, fix, missing)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range found {
		t.Logf("prerequisite found in %v: %s", time.Since(start).Round(time.Millisecond), p.Explanation)
	}
	if len(unresolved) != 0 || len(found) != 1 || !reflect.DeepEqual(found[0].Files, []string{"include/net/fib_rules.h"}) {
		t.Fatalf("Prerequisites = %+v, unresolved %+v; want include/net/fib_rules.h", found, unresolved)
	}
	p := found[0]
	if string(p.Diff) != parts["include/net/fib_rules.h"] || !strings.Contains(p.Explanation, "fib_rule_get_safe") || p.Kind != KindDebian {
		t.Errorf("prerequisite = %+v", p)
	}
	// Fix and prerequisite together apply; the fix never carried it.
	cmd := exec.Command("patch", "--dry-run", "--batch", "--force", "-p1", "-d", src)
	cmd.Stdin = strings.NewReader(string(p.Diff) + string(fix.Diff))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("prerequisite + fix do not apply: %v\n%s", err, out)
	}
}

// TestDebianPrerequisiteOutOfLine: CVE-2026-72052 is one of the corpus
// fixes that do not compile: its ip6_gre.c calls a helper another CVE's
// fix (CVE-2026-63829) added to include/net/rtnetlink.h and
// net/core/rtnetlink.c. From the generator's own refusal text the finder
// offers both files' change in the window.
func TestDebianPrerequisiteOutOfLine(t *testing.T) {
	d, src := debianSource(t)
	ctx := context.Background()
	rec := realRecord(t, "CVE-2026-72052")
	fix, err := d.Fetch(ctx, rec, "6.1.176")
	if err != nil {
		t.Fatal(err)
	}
	// Cut from a real run of the generator (see klp's TestCompilerErrors).
	reason := "net/ipv6/ip6_gre.c:2115: implicit declaration of function ‘rtnl_dev_link_net_capable’; did you mean ‘netlink_net_capable’? [-Werror=implicit-function-declaration]"
	found, unresolved, err := d.Prerequisites(ctx, fix, ParseCompilerErrors(reason))
	if err != nil {
		t.Fatal(err)
	}
	if len(unresolved) != 0 || len(found) != 1 {
		t.Fatalf("Prerequisites = %+v, unresolved %+v", found, unresolved)
	}
	p := found[0]
	t.Logf("prerequisite: %s", p.Explanation)
	if !reflect.DeepEqual(p.Files, []string{"include/net/rtnetlink.h", "net/core/rtnetlink.c"}) {
		t.Errorf("prerequisite files = %v, want the header and its .c", p.Files)
	}
	want := corpusPatch(t, "CVE-2026-63829")
	parts := splitPatch(want)
	if !strings.Contains(string(p.Diff), parts["include/net/rtnetlink.h"]) || !strings.Contains(string(p.Diff), parts["net/core/rtnetlink.c"]) {
		t.Errorf("prerequisite diff does not hold CVE-2026-63829's header and .c changes:\n%s", p.Diff)
	}
	cmd := exec.Command("patch", "--dry-run", "--batch", "--force", "-p1", "-d", src)
	cmd.Stdin = strings.NewReader(string(p.Diff) + string(fix.Diff))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("prerequisite + fix do not apply: %v\n%s", err, out)
	}
}

func TestIsPrototype(t *testing.T) {
	fn := Missing{Kind: MissingFunction, Name: "f"}
	for _, tt := range []struct {
		m    Missing
		line string
		want bool
	}{
		{fn, "int f(struct x *x);", true},
		{fn, "void f(void) __cold;", true},
		{fn, "static inline bool f(struct x *x)", false},
		{fn, "f(struct pnfs_layout_hdr *lo)", false}, // the return type on the line before: a definition
		{fn, "int f(int a) {", false},
		{fn, "#define f(x) (x)", false},
		{Missing{Kind: MissingIdentifier, Name: "F"}, "int F;", false},
	} {
		if got := isPrototype(tt.m, tt.line); got != tt.want {
			t.Errorf("isPrototype(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
