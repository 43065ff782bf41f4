package importrules

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/tuxtape/tuxtape/"

// A rule forbids every package under from to depend, directly or not, on
// a package that matches one of banned: a path under the module (a
// trailing slash means everything below it) or a standard-library path.
type rule struct {
	from   string
	banned []string
	why    string
}

// tooling is what a model or an analysis must not link: running programs,
// talking to the network, SQL. net/mail (announcement headers) links the
// net package for address literals but nothing that dials, so net itself
// is checked only as a direct import (see directBanned).
var tooling = []string{"os/exec", "net/http", "crypto/tls", "database/sql"}

func below(paths ...string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = mod + p
	}
	return out
}

var rules = []rule{
	{"internal/model/", append(below("internal/analysis/", "internal/server/", "internal/build/", "internal/service", "internal/frontend/", "internal/agent"), tooling...),
		"models are records and parsers: no tooling, nothing above them"},
	{"internal/analysis/", append(below("internal/server/", "internal/build/", "internal/service", "internal/frontend/", "internal/agent"), tooling...),
		"the analysis judges models; it fetches, builds and stores nothing"},
	{"internal/server/", below("internal/build/", "internal/service", "internal/frontend/", "internal/agent"),
		"the server side links no build tooling, no use cases and no front end"},
	{"internal/build/", below("internal/server/", "internal/service", "internal/frontend/", "internal/agent"),
		"builders run the generator without the store or the server"},
	{"internal/agent", below("internal/server/", "internal/service", "internal/build/", "internal/frontend/", "internal/analysis/", "internal/archive/repo"),
		"the agent on every host stays small: no store, server, generator, front end or archive signing"},
	{"cmd/tuxtape-agent", below("internal/server/", "internal/service", "internal/build/", "internal/frontend/", "internal/analysis/", "internal/archive/repo"),
		"the agent's binary links only the agent"},
	{"internal/archive/feed", below("internal/server/", "internal/service", "internal/build/", "internal/frontend/", "internal/archive/repo", "internal/agent"),
		"the archive's client side is the agent's: it reads and verifies, never signs"},
	{"internal/service", below("internal/frontend/"),
		"the service layer serves the front ends, not the other way round"},
	{"internal/", below("cmd/", "internal/frontend/cli"),
		"nothing links the programs' mains or the CLI"},
}

// directBanned are imports a model or analysis package may not name itself.
var directBanned = map[string][]string{
	"internal/model/":    {"net", "os/exec", "net/http", "database/sql", "syscall"},
	"internal/analysis/": {"net", "os/exec", "net/http", "database/sql", "syscall"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	return pkgs
}

// under reports whether import path p is at or below rel (a path under the
// module; a trailing slash means strictly below).
func under(p, rel string) bool {
	if strings.HasSuffix(rel, "/") {
		return strings.HasPrefix(p, mod+rel)
	}
	return p == mod+rel || strings.HasPrefix(p, mod+rel+"/")
}

func matches(dep, banned string) bool {
	if rel, ok := strings.CutPrefix(banned, mod); ok {
		return under(dep, rel)
	}
	return dep == banned
}

func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for _, r := range rules {
			if !under(p.ImportPath, r.from) {
				continue
			}
			for _, d := range p.Deps {
				for _, b := range r.banned {
					if matches(d, b) {
						out = append(out, p.ImportPath+" depends on "+d+": "+r.why)
					}
				}
			}
		}
		for from, banned := range directBanned {
			if !under(p.ImportPath, from) {
				continue
			}
			for _, imp := range p.Imports {
				for _, b := range banned {
					if imp == b {
						out = append(out, p.ImportPath+" imports "+imp+": models and the analysis only compute")
					}
				}
			}
		}
	}
	return out
}

func TestImportRules(t *testing.T) {
	for _, v := range violations(listPackages(t)) {
		t.Error(v)
	}
}

// TestRulesBite checks the rules on made-up dependency lists, so that a
// typo in a path cannot make TestImportRules pass vacuously.
func TestRulesBite(t *testing.T) {
	tests := []struct {
		pkg  pkg
		want bool
	}{
		{pkg{ImportPath: mod + "internal/model/vulns", Deps: []string{"os/exec"}}, true},
		{pkg{ImportPath: mod + "internal/model/kernel", Deps: []string{mod + "internal/build/debpkg"}}, true},
		{pkg{ImportPath: mod + "internal/model/kmsg", Imports: []string{"net"}, Deps: []string{"net"}}, true},
		{pkg{ImportPath: mod + "internal/model/vulns", Imports: []string{"net/mail"}, Deps: []string{"net", "net/mail"}}, false},
		{pkg{ImportPath: mod + "internal/model/profile", Deps: []string{"database/sql"}}, true},
		{pkg{ImportPath: mod + "internal/analysis/gauge", Deps: []string{mod + "internal/server/store"}}, true},
		{pkg{ImportPath: mod + "internal/analysis/gauge", Deps: []string{mod + "internal/model/vulns"}}, false},
		{pkg{ImportPath: mod + "internal/agent", Deps: []string{mod + "internal/server/store"}}, true},
		{pkg{ImportPath: mod + "internal/agent", Deps: []string{mod + "internal/build/klp"}}, true},
		{pkg{ImportPath: mod + "internal/agent", Deps: []string{mod + "internal/model/kmsg"}}, false},
		{pkg{ImportPath: mod + "cmd/tuxtape-agent", Deps: []string{mod + "internal/frontend/api"}}, true},
		{pkg{ImportPath: mod + "cmd/tuxtape-agent", Deps: []string{mod + "internal/agent/cli"}}, false},
		{pkg{ImportPath: mod + "internal/build/klp", Deps: []string{mod + "internal/server/store"}}, true},
		{pkg{ImportPath: mod + "internal/server/store", Deps: []string{mod + "internal/build/ktree"}}, true},
		{pkg{ImportPath: mod + "internal/service", Deps: []string{mod + "internal/frontend/cli"}}, true},
		{pkg{ImportPath: mod + "internal/server/store", Deps: []string{mod + "cmd/tuxtape"}}, true},
		{pkg{ImportPath: mod + "internal/frontend/cli", Deps: []string{mod + "internal/service", mod + "internal/server/store"}}, false},
		{pkg{ImportPath: mod + "internal/serverx", Deps: []string{mod + "internal/build/klp"}}, false},
	}
	for _, tt := range tests {
		got := violations([]pkg{tt.pkg})
		if (len(got) > 0) != tt.want {
			t.Errorf("violations(%s → %v) = %q, want a violation: %v", tt.pkg.ImportPath, tt.pkg.Deps, got, tt.want)
		}
	}
}
