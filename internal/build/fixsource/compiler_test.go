package fixsource

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// realGCC compiles src (and headers) in a temporary directory with the
// kernel's -Werror=implicit-function-declaration and returns gcc's
// messages in the given locale (C gives 'x' quotes, C.UTF-8 ‘x’).
func realGCC(t *testing.T, locale string, files map[string]string, main string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Fatalf("gcc is needed (scripts/install-deps installs it): %v", err)
	}
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("gcc", "-c", "-I", "include", "-Werror=implicit-function-declaration", "-fno-diagnostics-color", "-o", os.DevNull, main)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL="+locale)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("gcc compiled %s; want errors", main)
	}
	return string(out)
}

var gccFiles = map[string]string{
	"include/net/fib_rules.h": `struct fib_rule { int refcnt; };
typedef struct fib_rule fib_rule_t;
static inline int fib_rule_uses(struct fib_rule *r) { return r->suppress_ifgroup; }
`,
	"net/core/fib_rules.c": `#include <net/fib_rules.h>
int f(struct fib_rule *rule, fib_rule_t *r2)
{
	int x = fib_rule_get_safe(rule);
	x += rule->flags;
	x += r2->tun_id;
	x += FIB_RULE_DEV_DETACHED;
	x += fib_rule_get_safe(rule);
	return x;
}
int h(void) { struct rtnl_newlink_tbs *t = 0; return t->x; }
new_type_t v;
`,
}

func TestParseCompilerErrorsGCC(t *testing.T) {
	want := []Missing{
		{Kind: MissingMember, Name: "suppress_ifgroup", Type: "struct fib_rule", File: "include/net/fib_rules.h", Line: 3, Included: []string{"net/core/fib_rules.c"}},
		{Kind: MissingFunction, Name: "fib_rule_get_safe", File: "net/core/fib_rules.c", Line: 4},
		{Kind: MissingMember, Name: "flags", Type: "struct fib_rule", File: "net/core/fib_rules.c", Line: 5},
		{Kind: MissingMember, Name: "tun_id", Type: "struct fib_rule", File: "net/core/fib_rules.c", Line: 6},
		{Kind: MissingIdentifier, Name: "FIB_RULE_DEV_DETACHED", File: "net/core/fib_rules.c", Line: 7},
		{Kind: MissingType, Name: "rtnl_newlink_tbs", Type: "struct rtnl_newlink_tbs", File: "net/core/fib_rules.c", Line: 11},
		{Kind: MissingType, Name: "new_type_t", File: "net/core/fib_rules.c", Line: 12},
	}
	for _, locale := range []string{"C", "C.UTF-8"} {
		out := realGCC(t, locale, gccFiles, "net/core/fib_rules.c")
		got := ParseCompilerErrors(out)
		for i := range got {
			got[i].Message = ""
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseCompilerErrors(gcc, LC_ALL=%s) =\n%+v\nwant\n%+v\ngcc said:\n%s", locale, got, want, out)
		}
	}
}

func TestParseCompilerErrorsOther(t *testing.T) {
	tests := []struct {
		in   string
		want []Missing
	}{
		{`ERROR: modpost: "fib_rule_get_safe" [net/core/fib.ko] undefined!`,
			[]Missing{{Kind: MissingSymbol, Name: "fib_rule_get_safe", File: "net/core/fib.ko"}}},
		{"./drivers/x.c:10:3: warning: implicit declaration of function 'foo'; did you mean 'fo'? [-Wimplicit-function-declaration]",
			[]Missing{{Kind: MissingFunction, Name: "foo", File: "drivers/x.c", Line: 10}}},
		{"drivers/x.c:10:3: warning: 'x' undeclared", nil}, // only errors count, but for implicit declarations
		{"drivers/x.c:10:3: error: expected ';' before '}' token", nil},
		{"drivers/x.c:1:2: error: 'BAR' undeclared here (not in a function)",
			[]Missing{{Kind: MissingIdentifier, Name: "BAR", File: "drivers/x.c", Line: 1}}},
		{"", nil},
		{"fs/smb/client/cifsglob.h:29:10: fatal error: ../common/cifsglob.h: No such file or directory",
			[]Missing{{Kind: MissingFile, Name: "../common/cifsglob.h", File: "fs/smb/client/cifsglob.h", Line: 29}}},
		// The generator's summary of the same.
		{"fs/smb/client/cifsglob.h:29: ../common/cifsglob.h: No such file or directory",
			[]Missing{{Kind: MissingFile, Name: "../common/cifsglob.h", File: "fs/smb/client/cifsglob.h", Line: 29}}},
		// The generator's refusal reason, cut from a real run (klp's
		// TestCompilerErrors): CVE-2026-72052's ip6_gre.c.
		{"net/ipv6/ip6_gre.c:2115: implicit declaration of function ‘rtnl_dev_link_net_capable’; did you mean ‘netlink_net_capable’? [-Werror=implicit-function-declaration]; net/ipv6/ip6_gre.c:2130: ‘struct ip_tunnel’ has no member named ‘link_net’",
			[]Missing{
				{Kind: MissingFunction, Name: "rtnl_dev_link_net_capable", File: "net/ipv6/ip6_gre.c", Line: 2115},
				{Kind: MissingMember, Name: "link_net", Type: "struct ip_tunnel", File: "net/ipv6/ip6_gre.c", Line: 2130},
			}},
	}
	for _, tt := range tests {
		got := ParseCompilerErrors(tt.in)
		for i := range got {
			got[i].Message = ""
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCompilerErrors(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestDefinition(t *testing.T) {
	diff := []byte(`--- a/include/x.h
+++ b/include/x.h
@@ -1,3 +1,15 @@
 struct fib_rule {
 	int refcnt;
+	u8 suppress_ifgroup:1;
+	struct list_head	*flags __rcu;
 };
+#define FIB_RULE_DEV_DETACHED	0x8
+static inline bool fib_rule_get_safe(struct fib_rule *rule)
+{
+	return fib_rule_use(rule);
+}
+typedef struct x new_type_t;
+static inline bool
+fib_rule_split_line(struct fib_rule *rule);
+	RTNL_FLAG_X = 4,
+struct rtnl_newlink_tbs {
`)
	tests := []struct {
		m    Missing
		want bool
	}{
		{Missing{Kind: MissingFunction, Name: "fib_rule_get_safe"}, true},
		{Missing{Kind: MissingFunction, Name: "fib_rule_use"}, false}, // called, not defined
		{Missing{Kind: MissingMember, Name: "suppress_ifgroup", Type: "struct fib_rule"}, true},
		{Missing{Kind: MissingMember, Name: "flags", Type: "struct fib_rule"}, true},
		{Missing{Kind: MissingMember, Name: "refcnt", Type: "struct fib_rule"}, false}, // context, not added
		{Missing{Kind: MissingIdentifier, Name: "FIB_RULE_DEV_DETACHED"}, true},
		{Missing{Kind: MissingFunction, Name: "fib_rule_split_line"}, true}, // the return type on the line before
		{Missing{Kind: MissingIdentifier, Name: "RTNL_FLAG_X"}, true},
		{Missing{Kind: MissingType, Name: "new_type_t"}, true},
		{Missing{Kind: MissingType, Name: "rtnl_newlink_tbs", Type: "struct rtnl_newlink_tbs"}, true},
		{Missing{Kind: MissingType, Name: "rtnl_newlink_tbs", Type: "union rtnl_newlink_tbs"}, false},
	}
	for _, tt := range tests {
		_, _, ok := definition(diff, tt.m)
		if ok != tt.want {
			t.Errorf("definition(%s %s) = %v, want %v", tt.m.Kind, tt.m.Name, ok, tt.want)
		}
	}
}

func FuzzParseCompilerErrors(f *testing.F) {
	f.Add("t.c:4:17: error: implicit declaration of function ‘fib_rule_get_safe’ [-Werror=implicit-function-declaration]")
	f.Add("In file included from net/core/fib_rules.c:1:\ninclude/net/fib_rules.h:3:61: error: 'struct fib_rule' has no member named 'x'")
	f.Add("a.c:1:1: error: 'fib_rule_t' {aka 'struct fib_rule'} has no member named 'tun_id'")
	f.Add(`ERROR: modpost: "x" [a.ko] undefined!`)
	f.Add("a.c:12:1: error: invalid use of undefined type 'struct q'")
	f.Add("fs/smb/client/cifsglob.h:29:10: fatal error: ../common/cifsglob.h: No such file or directory")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range ParseCompilerErrors(s) {
			if m.Kind == MissingFile {
				if !noFileRE.MatchString(m.Name + ": No such file or directory") {
					t.Fatalf("missing file %q is not a header path", m.Name)
				}
				continue
			}
			if !identRE.MatchString(m.Name) {
				t.Fatalf("missing name %q is not an identifier", m.Name)
			}
			switch m.Kind {
			case MissingFunction, MissingMember, MissingIdentifier, MissingType, MissingSymbol:
			default:
				t.Fatalf("kind %q", m.Kind)
			}
			if m.Kind == MissingMember && m.Type == "" {
				t.Fatalf("member %q without its type", m.Name)
			}
			// The patterns built from it must compile (QuoteMeta'd names).
			definesRE(m)
		}
	})
}
