package fixsource

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/testenv"
	"github.com/tuxtape/tuxtape/internal/testenv/kernelenv"
)

// TestCorpusPrerequisiteSurvey measures the prerequisite finder on the
// whole corpus with real kernel compiles (opt-in: TUXTAPE_PREREQ_SURVEY=1,
// about 15 minutes on one core; or a comma-separated list of CVE ids). Each corpus fix's .c files are compiled
// (-fsyntax-only, the cloud kernel's flags from the prepared tree) before
// and after the fix; a fix whose files compile before and fail after for
// want of names gets its prerequisites looked up in 6.1.176 → 6.1.187-1,
// and is compiled again with them. It does not build modules or load them:
// that is the generator's and the VM's part.
func TestCorpusPrerequisiteSurvey(t *testing.T) {
	if os.Getenv("TUXTAPE_PREREQ_SURVEY") == "" {
		t.Skip("set TUXTAPE_PREREQ_SURVEY=1 to run the corpus survey (about 15 minutes)")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(cache, "tuxtape", "trees", kernelenv.Release+"_"+kernelenv.Version)
	cmdFile := filepath.Join(tree, "fs", "isofs", ".rock.o.cmd")
	flags, err := kernelFlags(cmdFile)
	if err != nil {
		testenv.Missing(t, "prepared tree with a compiled unit (run the livepatch tests once): %v", err)
	}
	d, _ := debianSource(t)
	ctx := context.Background()
	corpus := testenv.Corpus(t, "debian-6.1.176")
	var index []struct {
		ID    string   `json:"id"`
		Files []string `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(corpus, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	if only := os.Getenv("TUXTAPE_PREREQ_SURVEY"); only != "1" {
		ids := strings.Split(only, ",")
		kept := index[:0]
		for _, e := range index {
			for _, id := range ids {
				if e.ID == id {
					kept = append(kept, e)
				}
			}
		}
		index = kept
	}
	counts := map[string]int{}
	var needing, resolved, compiles []string
	start := time.Now()
	for _, e := range index {
		diff := corpusPatch(t, e.ID)
		var units []string
		for _, f := range e.Files {
			if strings.HasSuffix(f, ".c") {
				units = append(units, f)
			}
		}
		if len(units) == 0 {
			counts["no .c file"]++
			continue
		}
		if _, err := syntaxCheck(ctx, tree, flags, "", units); err != nil {
			counts["does not compile unfixed (config, arch or local flags)"]++
			continue
		}
		out, err := syntaxCheck(ctx, tree, flags, string(diff), units)
		if err == nil {
			counts["compiles with the fix"]++
			continue
		}
		missing := ParseCompilerErrors(out)
		if len(missing) == 0 {
			counts["fails with the fix, no missing name"]++
			t.Logf("%s: fails, no missing name: %s", e.ID, firstLines(out, 3))
			continue
		}
		needing = append(needing, e.ID)
		// Offer prerequisites round by round, as a person would: a
		// prerequisite can need its own (up to three rounds).
		fix := &Fix{CVE: e.ID, Kind: KindDebian, Diff: diff, Files: diffFiles(diff), From: "6.1.176", To: "6.1.187-1", Branch: "6.1"}
		var pre []byte
		var files, names []string
		for round := 1; round <= 3; round++ {
			for _, m := range missing {
				names = append(names, string(m.Kind)+" "+m.Name)
			}
			found, unresolved, err := d.Prerequisites(ctx, fix, missing)
			if err != nil {
				t.Fatalf("%s: %v", e.ID, err)
			}
			if len(unresolved) > 0 || len(found) == 0 {
				t.Logf("%s: round %d: missing %v; %d not found", e.ID, round, names, len(unresolved))
				break
			}
			if round == 1 {
				resolved = append(resolved, e.ID)
			}
			for _, p := range found {
				pre = append(pre, p.Diff...)
				files = append(files, p.Files...)
			}
			out, err := syntaxCheck(ctx, tree, flags, string(pre)+string(diff), units)
			if err == nil {
				compiles = append(compiles, e.ID)
				t.Logf("%s: round %d: missing %v; prerequisites %v: compiles", e.ID, round, names, files)
				break
			}
			missing = ParseCompilerErrors(out)
			if len(missing) == 0 {
				t.Logf("%s: round %d: missing %v; prerequisites %v found, still fails: %s", e.ID, round, names, files, firstLines(out, 2))
				break
			}
			// The next round looks past what is offered already.
			fix = &Fix{CVE: e.ID, Kind: KindDebian, Diff: diff, Files: append(diffFiles(diff), files...), From: "6.1.176", To: "6.1.187-1", Branch: "6.1"}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%-55s %d", k, counts[k])
	}
	t.Logf("fail for want of names: %d %v", len(needing), needing)
	t.Logf("prerequisite found for every name (first round): %d %v", len(resolved), resolved)
	t.Logf("compile with the prerequisites (up to three rounds): %d %v", len(compiles), compiles)
	t.Logf("survey took %v", time.Since(start).Round(time.Second))
}

// kernelFlags takes a module unit's gcc command from its kbuild .cmd file,
// without the dependency output, the object, the source and objtool.
func kernelFlags(cmdFile string) (string, error) {
	b, err := os.ReadFile(cmdFile)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	_, cmd, ok := strings.Cut(line, ":= ")
	if !ok {
		return "", fmt.Errorf("%s: no command", cmdFile)
	}
	cmd, _, _ = strings.Cut(cmd, " ; ")
	cmd = regexp.MustCompile(`-Wp,-MMD,\S+`).ReplaceAllString(cmd, "")
	cmd = regexp.MustCompile(`-DKBUILD_BASENAME=\S+ -DKBUILD_MODNAME=\S+ -D__KBUILD_MODNAME=\S+`).ReplaceAllString(cmd, "")
	cmd = regexp.MustCompile(` -c -o \S+ \S+\s*$`).ReplaceAllString(cmd, "")
	return cmd, nil
}

// syntaxCheck compiles units of tree, with diff applied in an overlay
// (the tree is only read), and returns gcc's output.
func syntaxCheck(ctx context.Context, tree, flags, diff string, units []string) (string, error) {
	overlay, err := os.MkdirTemp("", "tuxtape-survey-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(overlay)
	if diff != "" {
		// Copy the files the diff touches, then patch the copies.
		for _, f := range diffFiles([]byte(diff)) {
			dst := filepath.Join(overlay, f)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return "", err
			}
			if b, err := os.ReadFile(filepath.Join(tree, f)); err == nil {
				if err := os.WriteFile(dst, b, 0o644); err != nil {
					return "", err
				}
			}
		}
		cmd := exec.CommandContext(ctx, "patch", "-p1", "--batch", "--force", "--silent", "-d", overlay)
		cmd.Stdin = strings.NewReader(diff)
		if out, err := cmd.CombinedOutput(); err != nil {
			return string(out), fmt.Errorf("patch: %w", err)
		}
	}
	var all strings.Builder
	var failed error
	for _, u := range units {
		srcPath := "./" + u
		if diff != "" {
			srcPath = filepath.Join(overlay, u)
		}
		stem := strings.TrimSuffix(path.Base(u), ".c")
		args := fmt.Sprintf("%s -iquote ./%s -DKBUILD_BASENAME='\"%s\"' -DKBUILD_MODNAME='\"%s\"' -D__KBUILD_MODNAME=kmod_%s -fsyntax-only %s",
			// The overlay's headers come before the tree's.
			strings.Replace(flags, "-nostdinc", "-nostdinc -I"+overlay+"/include -I"+overlay+"/arch/x86/include", 1),
			path.Dir(u), stem, stem, stem, srcPath)
		cmd := exec.CommandContext(ctx, "sh", "-c", args)
		cmd.Dir = tree
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		all.Write(out)
		if err != nil {
			failed = err
		}
	}
	return all.String(), failed
}

func firstLines(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "error") {
			if keep = append(keep, strings.TrimSpace(l)); len(keep) == n {
				break
			}
		}
	}
	return strings.Join(keep, " | ")
}
