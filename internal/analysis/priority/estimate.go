package priority

import "strings"

// bugClass is a kind of bug a commit message names, with the severity
// points (the 6 × base score + vector nudges of a scored record) that an
// unscored record of that kind is estimated at.
//
// The CNA's own scores hardly depend on the class: over the scored
// records of the 2026-08-19 bundle, every class classify finds in at
// least 50 of them averages 49–52 points (NULL pointer dereference 50.1,
// memory leak 50.1, use-after-free 50.5, double free 51.7; 50.3 over
// all), the median base score being 7.8 for each. So an unscored record starts where a scored
// one is on average, 50, and the class moves it by judgement: +4 for
// memory corruption, which hands an attacker a write primitive, +2 for
// reads and races, −2 for hangs, −4 for leaks and warnings, which rarely
// give more than noise.
type bugClass struct {
	name   string
	points float64
}

// article is "a" or "an" for the class name in a reason.
func (c bugClass) article() string {
	switch c.name[0] {
	case 'o', 'i':
		return "an" // out-of-bounds, information, integer
	}
	return "a" // "a use-after-free": the u is said "you"
}

// The classes, by bit in the matcher's result, in classify's order.
var classes = [...]bugClass{
	{"use-after-free", 54},
	{"double free", 54},
	{"out-of-bounds write", 54},
	{"memory corruption", 54},
	{"privilege escalation", 54},
	{"type confusion", 54},
	{"out-of-bounds access", 52},
	{"information leak", 52},
	{"race condition", 52},
	{"integer overflow", 52},
	{"NULL pointer dereference", 50},
	{"kernel crash", 50},
	{"hang or deadlock", 48},
	{"memory leak", 46},
	{"kernel warning", 46},
}

// noClassPoints is the estimate when the text names no class.
const noClassPoints = 50

// Phrases naming each class, lowercase, each starting with a letter. A
// phrase matches at the start of a word (after a byte that is neither a
// letter nor '-', so "shift-out-of-bounds" is not an out-of-bounds
// access); a trailing '$' asks for the end of a word too.
var classText = newMatcher(phraseBits(classPhrases))

var classPhrases = [...][]string{
	{"use-after-free", "use after free", "use-after free", "uaf$", "slab-use-after-free"},
	{"double free", "double-free", "freed twice", "double fput"},
	{"out-of-bounds write", "out of bounds write", "oob write", "buffer overflow", "heap overflow",
		"heap-buffer-overflow", "stack-buffer-overflow", "buffer overrun", "write past", "writes past",
		"write beyond", "writes beyond"},
	{"memory corruption", "corrupt memory", "corrupts memory", "corrupting memory", "list corruption",
		"slab corruption", "arbitrary write", "arbitrary kernel write"},
	{"privilege escalation", "escalate privilege", "escalation of privilege", "gain root"},
	{"type confusion"},
	{"out-of-bounds", "out of bounds", "oob$", "slab-out-of-bounds", "stack-out-of-bounds",
		"global-out-of-bounds", "vmalloc-out-of-bounds", "array-index-out-of-bounds", "overread",
		"over-read", "buffer over-read"},
	{"info leak", "infoleak", "information leak", "information disclosure", "kernel-infoleak",
		"leak kernel", "leaks kernel", "leaking kernel", "uninit-value", "uninitialized", "uninitialised",
		"stale data"},
	{"race condition", "race between", "races with", "race window", "racing with", "toctou", "time-of-check"},
	{"integer overflow", "integer underflow", "arithmetic overflow", "signedness", "shift-out-of-bounds",
		"wraparound", "wrap around"},
	{"null pointer", "null-pointer", "null-ptr-deref", "null ptr", "null dereference", "null deref",
		"null-deref"},
	{"general protection fault", "kernel bug", "bug:", "bug_on", "oops", "kernel panic", "panic",
		"divide error", "division by zero", "divide by zero", "divide-by-zero", "stack overflow", "crash"},
	{"deadlock", "dead lock", "lockup", "soft lockup", "hung task", "hung_task", "infinite loop",
		"endless loop", "livelock", "stall", "hang"},
	{"memory leak", "memleak", "leak", "refcount leak", "reference leak", "resource leak"},
	{"warn", "lockdep", "data-race", "data race", "kcsan", "sleeping function called",
		"scheduling while atomic", "suspicious rcu", "ubsan"},
}

func phraseBits(sets [len(classes)][]string) map[string]uint32 {
	m := map[string]uint32{}
	for i, set := range sets {
		for _, p := range set {
			m[p] |= 1 << i
		}
	}
	return m
}

// cnaPreamble starts every description the kernel CNA writes.
const cnaPreamble = "In the Linux kernel, the following vulnerability has been resolved:\n\n"

// classification is what the text of an unscored record says.
type classification struct {
	class  int // index in classes, or -1
	points float64
}

// classify names the first class in table order whose phrases the text
// contains: the order puts the kinds that give an attacker the most
// first, so "BUG: kernel NULL pointer dereference" is a NULL pointer
// dereference, and a KASAN "slab-use-after-free" splat is a
// use-after-free even though it says "BUG:" too.
func classify(title, description string) classification {
	rest := description
	// The CNA's descriptions open with a fixed sentence and the title
	// (the commit's subject) on a line of its own: read those bytes once,
	// not twice.
	if body, ok := strings.CutPrefix(description, cnaPreamble); ok && strings.HasPrefix(body, title) &&
		(len(body) == len(title) || body[len(title)] == '\n') {
		rest = body[len(title):]
	}
	found := classText.match(title) | classText.match(rest)
	for i, bc := range classes {
		if found&(1<<i) != 0 {
			return classification{class: i, points: bc.points}
		}
	}
	return classification{class: -1, points: noClassPoints}
}

func (c classification) reason() string {
	if c.class < 0 {
		return "text names no bug class"
	}
	bc := classes[c.class]
	return "text names " + bc.article() + " " + bc.name
}

// subsystem is a weight for the files under a source-tree prefix.
type subsystem struct {
	prefix string
	points float64
	why    string
	// deeper names the subsystem by the file's first two path
	// components ("drivers/gpu") rather than by the prefix.
	deeper bool
	// top matches only files directly in prefix (fs/namei.c, not
	// fs/ext4/inode.c).
	top bool
}

// subsystems, most specific prefix first. The points say how often a
// subsystem is the target of real attacks (nf_tables, net/sched, io_uring,
// bpf and binder dominate kernel exploit write-ups and kernelCTF) and how
// much set-up an attacker needs (a device plugged in, a filesystem image
// mounted).
var subsystems = []subsystem{
	{prefix: "net/netfilter/", points: 8, why: "commonly attacked"},
	{prefix: "net/sched/", points: 8, why: "commonly attacked"},
	{prefix: "io_uring/", points: 7, why: "commonly attacked"},
	{prefix: "kernel/bpf/", points: 6, why: "commonly attacked"},
	{prefix: "drivers/android/", points: 6, why: "commonly attacked (binder)"},
	{prefix: "net/bluetooth/", points: 2, why: "radio protocol, attacker must be nearby"},
	{prefix: "net/wireless/", points: 2, why: "radio protocol, attacker must be nearby"},
	{prefix: "net/mac80211/", points: 2, why: "radio protocol, attacker must be nearby"},
	{prefix: "net/nfc/", points: 2, why: "radio protocol, attacker must be nearby"},
	{prefix: "net/", points: 4, why: "network stack", deeper: true},
	{prefix: "fs/overlayfs/", points: 5, why: "mountable in a user namespace, commonly attacked"},
	{prefix: "fs/smb/server/", points: 5, why: "network-facing file server"},
	{prefix: "fs/nfsd/", points: 3, why: "network-facing file server"},
	{prefix: "fs/fuse/", points: 3, why: "mountable by unprivileged users"},
	{prefix: "fs/smb/client/", points: 2, why: "network filesystem client"},
	{prefix: "fs/cifs/", points: 2, why: "network filesystem client"},
	{prefix: "fs/nfs/", points: 2, why: "network filesystem client"},
	{prefix: "fs/ceph/", points: 2, why: "network filesystem client"},
	{prefix: "fs/afs/", points: 2, why: "network filesystem client"},
	{prefix: "fs/9p/", points: 2, why: "network filesystem client"},
	{prefix: "fs/netfs/", points: 2, why: "network filesystem support"},
	{prefix: "fs/dlm/", points: 2, why: "cluster lock manager, network-facing"},
	{prefix: "fs/", points: 5, why: "VFS core", top: true},
	{prefix: "fs/", points: 1, why: "filesystem, needs a mounted image", deeper: true},
	{prefix: "mm/", points: 5, why: "core memory management"},
	{prefix: "kernel/", points: 4, why: "core kernel", deeper: true},
	{prefix: "ipc/", points: 4, why: "core kernel"},
	{prefix: "security/", points: 3, why: "security modules", deeper: true},
	{prefix: "virt/", points: 4, why: "KVM, guest-to-host surface"},
	{prefix: "arch/x86/kvm/", points: 4, why: "KVM, guest-to-host surface"},
	{prefix: "arch/arm64/kvm/", points: 4, why: "KVM, guest-to-host surface"},
	{prefix: "arch/", points: 0, why: "architecture code", deeper: true},
	{prefix: "crypto/", points: 2, why: "crypto API, reachable through AF_ALG"},
	{prefix: "lib/", points: 2, why: "library code shared by many callers"},
	{prefix: "block/", points: 1, why: "block layer"},
	{prefix: "include/", points: 1, why: "header shared by many units", deeper: true},
	{prefix: "drivers/gpu/", points: 1, why: "GPU driver, render nodes are open to unprivileged users"},
	{prefix: "drivers/usb/", points: 0, why: "USB, attacked with malicious devices"},
	{prefix: "drivers/hid/", points: 0, why: "USB, attacked with malicious devices"},
	{prefix: "drivers/media/usb/", points: 0, why: "USB, attacked with malicious devices"},
	{prefix: "sound/usb/", points: 0, why: "USB, attacked with malicious devices"},
	{prefix: "drivers/staging/", points: -4, why: "staging driver, rarely built"},
	{prefix: "drivers/", points: -2, why: "hardware driver, needs the device", deeper: true},
	{prefix: "sound/", points: -2, why: "sound driver, needs the device", deeper: true},
	{prefix: "init/", points: 0, why: "start-up code"},
	{prefix: "rust/", points: 0, why: "Rust support"},
	{prefix: "tools/", points: -15, why: "userspace tool, not kernel code"},
	{prefix: "samples/", points: -15, why: "sample code, not kernel code"},
	{prefix: "scripts/", points: -15, why: "build script, not kernel code"},
	{prefix: "Documentation/", points: -15, why: "documentation, not kernel code"},
}

// subsystemMatch is the subsystem of a record: name and weight.
type subsystemMatch struct {
	name   string
	points float64
	why    string
}

// subsystemsByTop holds subsystems by the first component of their
// prefix ("net"), in the table's order, so that a file is checked against
// a handful of prefixes rather than all of them.
var subsystemsByTop = func() map[string][]subsystem {
	m := map[string][]subsystem{}
	for _, s := range subsystems {
		top, _, _ := strings.Cut(s.prefix, "/")
		m[top] = append(m[top], s)
	}
	return m
}()

// subsystemOf weighs a record by its most exposed file: a fix touching
// net/ and a driver is reachable through net/. Ties go to the first file.
func subsystemOf(files []string) (subsystemMatch, bool) {
	var best subsystemMatch
	found := false
	for _, f := range files {
		top, _, _ := strings.Cut(f, "/")
		for _, s := range subsystemsByTop[top] {
			if !strings.HasPrefix(f, s.prefix) || (s.top && strings.Contains(f[len(s.prefix):], "/")) {
				continue
			}
			if !found || s.points > best.points {
				best = subsystemMatch{name: subsystemName(f, s), points: s.points, why: s.why}
				found = true
			}
			break
		}
	}
	return best, found
}

func subsystemName(file string, s subsystem) string {
	if s.deeper {
		// First two components when the file is deeper than that.
		if i := strings.IndexByte(file[len(s.prefix):], '/'); i > 0 {
			return file[:len(s.prefix)+i]
		}
	}
	return strings.TrimSuffix(s.prefix, "/")
}
