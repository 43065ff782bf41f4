// Package risk scores how risky a livepatch is, with the reasons, from the
// fix's diff alone (and, when the generator has it, the list of functions
// it patches): a reviewer reads the reasons before the number.
//
// The score is a sum of points per reason, each reason capped so that one
// kind of change (a long but mechanical diff) cannot drown the others:
// size (functions and lines changed), locking and memory-ordering
// primitives added or removed, hot paths (scheduler, memory management,
// networking core, locking), new functions or data the patch carries, and
// changes close to a refusal of the generator (init/exit code, data layout,
// headers, assembly, build machinery). It is a triage aid computed from
// text, not a proof: a diff that renames a lock in a comment scores nothing,
// and one that calls a helper taking a lock scores only its size.
package risk

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/tuxtape/tuxtape/internal/model/refusal"
)

// Reason codes, stable: stored and shown with a patch.
const (
	CodeFunctions      = "functions_changed"
	CodeLines          = "lines_changed"
	CodeLocking        = "locking_changed"
	CodeMemoryOrdering = "memory_ordering_changed"
	CodeHotPath        = "hot_path"
	CodeNewFunction    = "function_added"
	CodeNewData        = "data_added"
	CodeChangedData    = "data_changed"
	CodeStructLayout   = "struct_layout_changed"
	CodeInitExit       = "init_exit_changed"
	CodeHeader         = "header_changed"
	CodeAssembly       = "assembly_changed"
	CodeBuildMachinery = "build_machinery_changed"
)

// Levels, by Total: below 20 low, below 45 medium, else high.
const (
	LevelLow    = "low"
	LevelMedium = "medium"
	LevelHigh   = "high"
)

// Score is a patch's risk: the sum of its reasons' points and a level a
// reviewer can sort by.
type Score struct {
	Total   int      `json:"total"`
	Level   string   `json:"level"`
	Reasons []Reason `json:"reasons"`
}

// Reason is one contribution to a Score.
type Reason struct {
	Code   string `json:"code"`
	Points int    `json:"points"`
	Detail string `json:"detail"`
	// Near is the generator's refusal this change comes close to, when
	// there is one: the generator accepted it, a reviewer should see why
	// it almost did not.
	Near refusal.Code `json:"near,omitempty"`
}

// Input is what Assess scores.
type Input struct {
	// Diff is the fix as a unified diff (plain, git, or format-patch).
	Diff []byte
	// Functions, when the generator has built the patch, are the patched
	// functions per target object ("vmlinux", module names); they replace
	// the count guessed from the diff's text.
	Functions map[string][]string
}

// Assess scores in.
func Assess(in Input) (Score, error) {
	files, err := ParseDiff(in.Diff)
	if err != nil {
		return Score{}, fmt.Errorf("assess risk: %w", err)
	}
	if len(files) == 0 {
		return Score{}, fmt.Errorf("assess risk: %w: no file changes", ErrBadDiff)
	}
	var s Score
	add := func(r Reason) {
		if r.Points > 0 {
			s.Reasons = append(s.Reasons, r)
		}
	}
	facts := gather(files)
	add(functionsReason(facts, in.Functions))
	add(linesReason(facts))
	add(primitiveReason(CodeLocking, "locking", facts.locking, 6, 30))
	add(primitiveReason(CodeMemoryOrdering, "memory-ordering", facts.ordering, 4, 20))
	add(hotPathReason(files))
	add(listReason(CodeNewFunction, "new function", facts.newFuncs, 5, 15, ""))
	add(listReason(CodeNewData, "new file-scope data", facts.newData, 8, 24, refusal.ChangedData))
	add(listReason(CodeChangedData, "changed file-scope data", facts.changedData, 12, 24, refusal.ChangedData))
	add(listReason(CodeStructLayout, "struct layout changed", facts.structs, 15, 30, refusal.ChangedData))
	add(listReason(CodeInitExit, "init/exit code changed", facts.initExit, 10, 20, refusal.InitExit))
	add(listReason(CodeHeader, "header", facts.headers, 8, 24, refusal.HeaderTooWide))
	add(listReason(CodeAssembly, "assembly file", facts.asm, 25, 25, refusal.Assembly))
	add(listReason(CodeBuildMachinery, "build machinery file", facts.build, 20, 20, refusal.NotCSource))
	sort.SliceStable(s.Reasons, func(i, j int) bool { return s.Reasons[i].Points > s.Reasons[j].Points })
	for _, r := range s.Reasons {
		s.Total += r.Points
	}
	switch {
	case s.Total < 20:
		s.Level = LevelLow
	case s.Total < 45:
		s.Level = LevelMedium
	default:
		s.Level = LevelHigh
	}
	return s, nil
}

// facts are what the reasons are computed from.
type facts struct {
	added, removed int
	files          int
	functions      []string // "file:function" (or "file:~line" when unnamed)
	locking        map[string]int
	ordering       map[string]int
	newFuncs       []string
	newData        []string
	changedData    []string
	structs        []string
	initExit       []string
	headers        []string
	asm            []string
	build          []string
}

func gather(files []File) facts {
	f := facts{locking: map[string]int{}, ordering: map[string]int{}}
	for _, file := range files {
		p := file.Path()
		f.files++
		switch kind(p) {
		case kindHeader:
			f.headers = append(f.headers, p)
		case kindAsm:
			f.asm = append(f.asm, p)
		case kindBuild:
			f.build = append(f.build, p)
		}
		var defsAdded, defsRemoved, dataAdded, dataRemoved []string
		for _, h := range file.Hunks {
			ctx := hunkContext{section: h.Section}
			for _, l := range h.Lines {
				code := stripComment(l.Text)
				ctx.observe(l.Text)
				switch l.Op {
				case '+', '-':
					sign := 1
					if l.Op == '+' {
						f.added++
					} else {
						f.removed++
						sign = -1
					}
					if strings.TrimSpace(l.Text) == "" || isComment(l.Text) {
						continue
					}
					name := ctx.fn
					_, isData := definedData(l.Text)
					switch {
					case name != "":
						f.functions = appendOnce(f.functions, p+":"+name)
					case ctx.inData != "":
						f.changedData = appendOnce(f.changedData, p+": "+ctx.inData)
					case ctx.inStruct == "" && !isData:
						// No definition in sight: one unnamed function per
						// place, so that size is not undercounted.
						f.functions = appendOnce(f.functions, fmt.Sprintf("%s:~%d", p, h.NewStart))
					}
					if ctx.init {
						f.initExit = appendOnce(f.initExit, p+":"+ctx.fn)
					}
					if ctx.inStruct != "" {
						f.structs = appendOnce(f.structs, p+": "+ctx.inStruct)
					}
					if m := initExitRE.FindString(code); m != "" {
						f.initExit = appendOnce(f.initExit, p+": "+m)
					}
					for _, m := range lockRE.FindAllStringSubmatch(code, -1) {
						f.locking[m[1]] += sign
					}
					for _, m := range orderRE.FindAllStringSubmatch(code, -1) {
						f.ordering[m[1]] += sign
					}
					if n, ok := definedFunction(l.Text); ok {
						if l.Op == '+' {
							defsAdded = append(defsAdded, n)
						} else {
							defsRemoved = append(defsRemoved, n)
						}
					} else if n, ok := definedData(l.Text); ok {
						if l.Op == '+' {
							dataAdded = append(dataAdded, n)
						} else {
							dataRemoved = append(dataRemoved, n)
						}
					}
				}
			}
		}
		// A definition on both sides had its signature or initializer
		// changed; only one on the + side is new.
		for _, n := range defsAdded {
			if !slices.Contains(defsRemoved, n) {
				f.newFuncs = appendOnce(f.newFuncs, p+": "+n)
			}
		}
		for _, n := range dataAdded {
			if slices.Contains(dataRemoved, n) {
				f.changedData = appendOnce(f.changedData, p+": "+n)
			} else {
				f.newData = appendOnce(f.newData, p+": "+n)
			}
		}
		for _, n := range dataRemoved {
			if !slices.Contains(dataAdded, n) {
				f.changedData = appendOnce(f.changedData, p+": "+n+" (removed)")
			}
		}
	}
	return f
}

func functionsReason(f facts, patched map[string][]string) Reason {
	n, names, source := len(f.functions), f.functions, "from the diff"
	if len(patched) > 0 {
		names = nil
		for obj, fns := range patched {
			for _, fn := range fns {
				names = append(names, obj+":"+fn)
			}
		}
		sort.Strings(names)
		n, source = len(names), "patched by the generator"
	}
	return Reason{
		Code:   CodeFunctions,
		Points: min(3*n, 24),
		Detail: fmt.Sprintf("%d function(s) %s: %s", n, source, listText(names)),
	}
}

func linesReason(f facts) Reason {
	n := f.added + f.removed
	return Reason{
		Code:   CodeLines,
		Points: min((n+3)/4, 20),
		Detail: fmt.Sprintf("%d line(s) changed (+%d −%d) in %d file(s)", n, f.added, f.removed, f.files),
	}
}

// primitiveReason counts the primitives whose number of calls the diff
// changes: a call only moved (removed and added back) is not counted.
func primitiveReason(code, what string, net map[string]int, each, limit int) Reason {
	var added, removed []string
	for name, n := range net {
		switch {
		case n > 0:
			added = append(added, fmt.Sprintf("%s ×%d", name, n))
		case n < 0:
			removed = append(removed, fmt.Sprintf("%s ×%d", name, -n))
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	n := len(added) + len(removed)
	if n == 0 {
		return Reason{}
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "added "+strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		parts = append(parts, "removed "+strings.Join(removed, ", "))
	}
	return Reason{Code: code, Points: min(each*n, limit), Detail: what + " primitives " + strings.Join(parts, "; ")}
}

func hotPathReason(files []File) Reason {
	var hot []string
	for _, f := range files {
		if label := hotPath(f.Path()); label != "" {
			hot = appendOnce(hot, f.Path()+" ("+label+")")
		}
	}
	if len(hot) == 0 {
		return Reason{}
	}
	return Reason{
		Code:   CodeHotPath,
		Points: min(15+5*(len(hot)-1), 25),
		Detail: "on a hot path: " + strings.Join(hot, ", "),
	}
}

func listReason(code, what string, items []string, each, limit int, near refusal.Code) Reason {
	if len(items) == 0 {
		return Reason{}
	}
	d := fmt.Sprintf("%s: %s", what, listText(items))
	if near != "" {
		d += " (close to the generator's " + string(near) + " refusal)"
	}
	return Reason{Code: code, Points: min(each*len(items), limit), Detail: d, Near: near}
}

func listText(items []string) string {
	const show = 8
	if len(items) <= show {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:show], ", ") + fmt.Sprintf(" and %d more", len(items)-show)
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// The primitives. Names are matched as calls, so a variable called
// "barrier" or a comment does not count.
var (
	lockRE  = regexp.MustCompile(`\b((?:raw_)?spin_(?:try)?(?:un)?lock\w*|(?:read|write)_(?:try)?(?:un)?lock\w*|mutex_\w+|rcu_\w+|srcu_\w+|synchronize_(?:rcu|srcu|net)\w*|call_rcu\w*|kfree_rcu\w*|(?:down|up)_(?:read|write)\w*|percpu_(?:down|up)_\w+|(?:raw_)?(?:read|write)_seq\w*|local_irq_\w+|local_bh_\w+|preempt_(?:en|dis)able\w*|scoped_guard|guard|lockdep_assert\w*)\s*\(`)
	orderRE = regexp.MustCompile(`\b(smp_(?:mb|rmb|wmb|store_release|load_acquire|store_mb|cond_load_\w+|mb__\w+)|READ_ONCE|WRITE_ONCE|barrier|mb|rmb|wmb|dma_(?:r|w)?mb|atomic(?:64|_long)?_\w+|refcount_\w+|(?:test_and_)?(?:set|clear|change)_bit\w*|cmpxchg\w*|try_cmpxchg\w*|xchg\w*)\s*\(`)
	// initExitRE marks init/exit code and its data in a changed line.
	initExitRE = regexp.MustCompile(`\b(?:__init|__exit|__initdata|__exitdata|__initconst|__meminit|module_init|module_exit|late_initcall|subsys_initcall|device_initcall|core_initcall|fs_initcall|arch_initcall|module_\w+_driver)\b`)
)

// Hot paths: code most tasks run through, where a mistake in a livepatch
// hurts everything at once and a transition waits on busy tasks.
var hotPaths = []struct{ prefix, label string }{
	{"kernel/sched/", "scheduler"},
	{"kernel/locking/", "locking"},
	{"kernel/rcu/", "RCU"},
	{"kernel/irq/", "interrupts"},
	{"kernel/time/", "timekeeping"},
	{"kernel/entry/", "kernel entry"},
	{"kernel/fork.c", "process creation"},
	{"kernel/exit.c", "process exit"},
	{"kernel/signal.c", "signals"},
	{"kernel/workqueue.c", "workqueues"},
	{"mm/", "memory management"},
	{"net/core/", "networking core"},
	{"net/socket.c", "socket layer"},
	{"net/ipv4/tcp", "TCP"},
	{"net/ipv6/tcp", "TCP"},
	{"net/ipv4/ip_", "IPv4"},
	{"net/ipv6/ip6_", "IPv6"},
	{"net/ipv4/route.c", "IPv4 routing"},
	{"net/ipv4/udp", "UDP"},
	{"net/ipv6/udp", "UDP"},
	{"net/netfilter/core.c", "netfilter core"},
	{"block/blk-", "block layer"},
	{"fs/namei.c", "path lookup"},
	{"fs/dcache.c", "dentry cache"},
	{"fs/inode.c", "inode cache"},
	{"fs/read_write.c", "file I/O"},
	{"arch/x86/entry/", "kernel entry"},
	{"arch/x86/mm/", "memory management"},
	{"lib/", "library code"},
}

func hotPath(p string) string {
	for _, h := range hotPaths {
		if strings.HasPrefix(p, h.prefix) {
			return h.label
		}
	}
	return ""
}

type fileKind int

const (
	kindC fileKind = iota
	kindHeader
	kindAsm
	kindBuild
	kindOther
)

// BuildMachinery reports whether a path is part of the build machinery
// (Makefiles, Kbuild, Kconfig, scripts/, tools/): a change there runs as
// code on the builder at build time.
func BuildMachinery(p string) bool { return kind(p) == kindBuild }

func kind(p string) fileKind {
	base := p[strings.LastIndexByte(p, '/')+1:]
	switch {
	case strings.HasSuffix(p, ".c"):
		return kindC
	case strings.HasSuffix(p, ".h"):
		return kindHeader
	case strings.HasSuffix(p, ".S"):
		return kindAsm
	case strings.HasPrefix(base, "Makefile"), strings.HasPrefix(base, "Kbuild"), strings.HasPrefix(base, "Kconfig"),
		strings.HasSuffix(base, ".mk"), strings.HasPrefix(p, "scripts/"), strings.HasPrefix(p, "tools/"):
		return kindBuild
	}
	return kindOther
}
