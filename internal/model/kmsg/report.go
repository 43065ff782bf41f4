package kmsg

import (
	"regexp"
	"strconv"
	"strings"
)

// Limits on a report, against hostile or runaway logs.
const (
	MaxReportLines = 300 // lines kept per report; a report ends at this many
	MaxTraceFrames = 128 // call-trace frames kept
	MaxModules     = 512 // "Modules linked in" entries kept
)

// Frame is one call-trace entry: "func+0x1a/0x30 [module]", or a bare
// address "0xffffffffc04e7000" where the kernel found no symbol.
type Frame struct {
	Func       string
	Off, Len   uint64
	Module     string // "" for the core kernel
	Addr       uint64 // for a bare address; Func is then ""
	Unreliable bool   // the "? " prefix: a stale stack word, maybe not a real caller
}

// String formats f as the kernel does.
func (f Frame) String() string {
	var b strings.Builder
	if f.Unreliable {
		b.WriteString("? ")
	}
	if f.Func == "" {
		b.WriteString("0x" + strconv.FormatUint(f.Addr, 16))
		return b.String()
	}
	b.WriteString(f.Func + "+0x" + strconv.FormatUint(f.Off, 16) + "/0x" + strconv.FormatUint(f.Len, 16))
	if f.Module != "" {
		b.WriteString(" [" + f.Module + "]")
	}
	return b.String()
}

// reFrame is a trace entry. Old kernels put "[<address>] " first; a
// kernel with CONFIG_STACKTRACE_BUILD_ID adds the build id after the
// module name. Symbols may carry compiler suffixes (.cold, .isra.0).
var (
	reFrame     = regexp.MustCompile(`^(?:\[<[0-9a-f]+>\] )?(\? )?([A-Za-z_.$][\w.$]*)\+0x([0-9a-f]{1,16})/0x([0-9a-f]{1,16})(?: \[([\w-]+)(?: [0-9a-f]+)?\])?$`)
	reAddrFrame = regexp.MustCompile(`^(\? )?0x([0-9a-f]{1,16})$`)
)

// ParseFrame parses one call-trace entry, as it appears after "Call
// Trace:" or in "RIP: 0010:" (without that prefix). Surrounding space is
// ignored.
func ParseFrame(s string) (Frame, bool) {
	s = strings.TrimSpace(s)
	if m := reFrame.FindStringSubmatch(s); m != nil {
		off, err1 := strconv.ParseUint(m[3], 16, 64)
		n, err2 := strconv.ParseUint(m[4], 16, 64)
		if err1 != nil || err2 != nil {
			return Frame{}, false
		}
		return Frame{Func: m[2], Off: off, Len: n, Module: m[5], Unreliable: m[1] != ""}, true
	}
	if m := reAddrFrame.FindStringSubmatch(s); m != nil {
		a, err := strconv.ParseUint(m[2], 16, 64)
		if err != nil {
			return Frame{}, false
		}
		return Frame{Addr: a, Unreliable: m[1] != ""}, true
	}
	return Frame{}, false
}

// Module is one "Modules linked in:" entry.
type Module struct {
	Name  string
	Flags string // taint and state letters: "OE", "OE+" (loading), "" if none
}

// ParseModules parses the list after "Modules linked in:", e.g.
// "a b(OE) c [last unloaded: d(OEK)]", returning the modules and the
// last-unloaded one's name.
func ParseModules(s string) ([]Module, string) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "Modules linked in:"))
	var last string
	if i := strings.Index(s, "[last unloaded: "); i >= 0 {
		l := strings.TrimSuffix(strings.TrimSpace(s[i+len("[last unloaded: "):]), "]")
		last, _ = splitModule(l)
		s = s[:i]
	}
	var mods []Module
	for _, f := range strings.Fields(s) {
		if len(mods) == MaxModules {
			break
		}
		name, flags := splitModule(f)
		if name != "" {
			mods = append(mods, Module{Name: name, Flags: flags})
		}
	}
	return mods, last
}

func splitModule(s string) (name, flags string) {
	name, flags, ok := strings.Cut(s, "(")
	if ok {
		flags = strings.TrimSuffix(flags, ")")
	}
	return name, flags
}

// Report is one oops, warning, lockup or stall report: the header and the
// lines after it, up to "---[ end trace ... ]---" or the end of its call
// trace.
type Report struct {
	Kind   Kind   // the header's kind
	Header string // the first header line ("WARNING: CPU: 0 PID: 1 at ...")
	At     string // "file:line" from a WARNING or "kernel BUG at" header
	CPU    int    // -1 when not logged
	PID    int    // -1 when not logged
	Comm   string
	// Tainted holds the taint letters ("GWOEK"); "" for "Not tainted".
	Tainted      string
	Release      string // "6.1.0-50-cloud-amd64"
	Build        string // "#1 Debian 6.1.176-1"
	RIP          Frame  // the kernel RIP; Func and Addr are empty when not logged
	Trace        []Frame
	Modules      []Module
	LastUnloaded string
	Lines        []string // the report's messages, as Record.Text
	Complete     bool     // it ended with "---[ end trace" or a closed trace
}

var (
	reCPULine   = regexp.MustCompile(`^CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (.*?) (?:Not tainted|Tainted: ([A-Z ]*[A-Z])) +(\d\S*)(?: +(.*))?$`)
	reTaintOnly = regexp.MustCompile(`^\s*Tainted: ([A-Z ]*[A-Z]) +(\d\S*)(?: +(.*))?$`)
	reAt        = regexp.MustCompile(`(?: at |kernel BUG at )(\S+:\d+)`)
	reRIP       = regexp.MustCompile(`^(?:RIP: 0010:|pc : )(.*)$`)
	reIRQMarker = regexp.MustCompile(`^\s*</?(?:TASK|IRQ|NMI|SOFTIRQ|EOI|#\w+)>\s*$`)
)

// reportKind says whether a line starts (or, right after another header,
// continues) a report.
func reportKind(k Kind) bool {
	switch k {
	case KindPanic, KindOops, KindBUG, KindWarning, KindGPF, KindHungTask, KindSoftLockup, KindRCUStall:
		return true
	}
	return false
}

// Reports groups consecutive kernel records into reports. Records without
// a kernel timestamp (user space's output on a console) are skipped.
func Reports(records []Record) []Report {
	var out []Report
	var cur *Report
	depth, traced := 0, false // <TASK> nesting; whether a trace opened and closed
	closeCur := func() {
		if cur != nil {
			cur.Complete = cur.Complete || traced
			out = append(out, *cur)
			cur = nil
		}
	}
	for _, r := range records {
		if !r.Timestamped {
			continue
		}
		text := r.Text
		ev := Classify(text)
		trimmed := strings.TrimSpace(text)
		if cur != nil {
			switch {
			case reportKind(ev.Kind) && (cur.PID >= 0 || len(cur.Trace) > 0 || traced):
				// A new report; the current one had its body already.
				closeCur()
			case traced && !strings.HasPrefix(trimmed, "Modules linked in:") &&
				!strings.HasPrefix(trimmed, "CR2:") && !strings.HasPrefix(trimmed, "---[ end"):
				// After a closed trace only an oops's trailer belongs.
				closeCur()
			}
		}
		if cur == nil {
			if !reportKind(ev.Kind) {
				continue
			}
			cur = &Report{Kind: ev.Kind, Header: text, CPU: -1, PID: -1}
			depth, traced = 0, false
			if m := reAt.FindStringSubmatch(text); m != nil && (ev.Kind == KindWarning || ev.Kind == KindBUG) {
				cur.At = m[1]
			}
			if ev.Comm != "" {
				cur.Comm, cur.PID = ev.Comm, ev.PID
			}
		}
		cur.Lines = append(cur.Lines, text)
		switch {
		case strings.HasPrefix(trimmed, "---[ end"):
			cur.Complete = true
			closeCur()
			continue
		case strings.HasPrefix(trimmed, "CPU: "):
			if m := reCPULine.FindStringSubmatch(trimmed); m != nil && cur.CPU < 0 {
				cur.CPU, cur.PID, cur.Comm = atoi(m[1]), atoi(m[2]), m[3]
				cur.Tainted = strings.ReplaceAll(m[4], " ", "")
				cur.Release, cur.Build = m[5], strings.Join(strings.Fields(m[6]), " ")
			}
		case strings.HasPrefix(trimmed, "Tainted: "):
			if m := reTaintOnly.FindStringSubmatch(text); m != nil && cur.Release == "" {
				cur.Tainted = strings.ReplaceAll(m[1], " ", "")
				cur.Release, cur.Build = m[2], strings.Join(strings.Fields(m[3]), " ")
			}
		case strings.HasPrefix(trimmed, "RIP: ") || strings.HasPrefix(trimmed, "pc : "):
			// The first kernel-mode RIP; a later "RIP: 0033:" is user space's.
			if m := reRIP.FindStringSubmatch(trimmed); m != nil && cur.RIP.Func == "" && cur.RIP.Addr == 0 {
				if f, ok := ParseFrame(m[1]); ok {
					cur.RIP = f
				}
			}
		case strings.HasPrefix(trimmed, "Modules linked in:"):
			if cur.Modules == nil {
				cur.Modules, cur.LastUnloaded = ParseModules(trimmed)
			}
		case reIRQMarker.MatchString(text):
			if strings.HasPrefix(trimmed, "</") {
				depth--
				if depth <= 0 {
					traced = true
				}
			} else {
				depth++
			}
		default:
			if f, ok := ParseFrame(text); ok && len(cur.Trace) < MaxTraceFrames {
				cur.Trace = append(cur.Trace, f)
			}
		}
		if len(cur.Lines) >= MaxReportLines {
			closeCur()
		}
	}
	closeCur()
	return out
}

// Involves reports whether the report implicates a module or functions:
// the module (dashes and underscores alike) is the RIP's or a trace
// frame's, or one of funcs (compiler suffixes like .cold ignored) is the
// RIP or in the trace. Unreliable frames count too, since a livepatch
// function can be on the stack below a frame the unwinder doubts.
func (r Report) Involves(module string, funcs []string) bool {
	mod := normModule(module)
	frames := append([]Frame{r.RIP}, r.Trace...)
	for _, f := range frames {
		if mod != "" && f.Module != "" && normModule(f.Module) == mod {
			return true
		}
		if f.Func == "" {
			continue
		}
		base, _, _ := strings.Cut(f.Func, ".")
		for _, fn := range funcs {
			if fn != "" && (f.Func == fn || base == fn) {
				return true
			}
		}
	}
	return false
}

func normModule(s string) string { return strings.ReplaceAll(s, "-", "_") }
