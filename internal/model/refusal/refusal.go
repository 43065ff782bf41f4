// Package refusal names why a fix did not become a livepatch module: a
// stable code per reason, grouped into the classes callers act on (count
// it, hand it to a human, add a prerequisite, report a fault). The
// generator returns the codes; the corpus table, the CLI's exit codes, the
// API and the dashboard read them without linking the generator.
package refusal

// Code is one reason, stable across releases: stored, sent over the wire
// and counted by.
type Code string

// The codes. Their class (see Class) decides what a caller does.
const (
	// NotCompiled: this kernel does not build the changed code.
	NotCompiled Code = "not_compiled"
	// OtherArch: the fix changes another architecture's code.
	OtherArch Code = "other_arch"
	// NoChange: the compiled code is the same before and after the fix.
	NoChange Code = "no_functional_change"
	// FixDoesNotApply: the diff does not apply to the kernel's source.
	FixDoesNotApply Code = "fix_does_not_apply"
	// FixDoesNotCompile: the unfixed units compile, the fixed ones do not
	// (the fix needs a change it does not carry).
	FixDoesNotCompile Code = "fix_does_not_compile"
	// BadFix: the fix is empty, or names paths outside the source tree.
	BadFix Code = "bad_fix"
	// BuildFailed: make failed in a way that is neither of the above.
	BuildFailed Code = "build_failed"

	// The fix cannot be livepatched as it is.
	ChangedData        Code = "changed_data"          // existing data changes
	InitExit           Code = "init_exit_code"        // __init/__exit code
	HeaderNeedsProfile Code = "header_needs_profile"  // a header, without a real build profile
	HeaderTooWide      Code = "header_too_wide"       // a header read by too many units
	Assembly           Code = "assembly"              // .S files
	NotCSource         Code = "not_c_source"          // anything else that is not C
	Noinstr            Code = "noinstr_code"          // noinstr/entry code
	NoFtrace           Code = "no_ftrace_entry"       // notrace, or built without ftrace
	KthreadMain        Code = "kthread_main"          // a kernel thread's main function
	NotRunningSymbol   Code = "not_running_symbol"    // inlined or absent in the running kernel
	NothingRedirected  Code = "nothing_redirectable"  // no changed function can be redirected
	ModuleStaticKey    Code = "module_static_key"     // a static key the loader cannot reach
	DataReference      Code = "data_klp_reference"    // a livepatch relocation needed in data
	ModuleUnexported   Code = "module_unexported_ref" // a module patch reaching an unexported vmlinux symbol
	MissingSymbol      Code = "missing_symbol"        // a reference the running kernel cannot resolve
	SpecialEntry       Code = "special_entry_ref"     // a special-section entry that needs a livepatch relocation
	// A changed function livepatch cannot redirect is reached through
	// its address (a pointer that keeps the old code), or from more
	// compile units than a patch follows.
	AddressTaken   Code = "address_taken"
	CallersTooMany Code = "callers_too_many"
)

// Class groups codes by what a caller does about them.
type Class string

// The classes.
const (
	ClassNotCompiled       Class = "not_compiled"       // nothing to patch in this kernel
	ClassNoChange          Class = "no_change"          // nothing to patch in this configuration
	ClassNotLivepatchable  Class = "not_livepatchable"  // a human must write the patch
	ClassFixDoesNotApply   Class = "fix_does_not_apply" // the fix is for other source
	ClassFixDoesNotCompile Class = "fix_does_not_compile"
	ClassFailed            Class = "failed" // a fault: the input or the tool
)

// Class is the class of c; an unknown code is a fault.
func (c Code) Class() Class {
	switch c {
	case NotCompiled, OtherArch:
		return ClassNotCompiled
	case NoChange:
		return ClassNoChange
	case FixDoesNotApply:
		return ClassFixDoesNotApply
	case FixDoesNotCompile:
		return ClassFixDoesNotCompile
	case BadFix, BuildFailed:
		return ClassFailed
	case ChangedData, InitExit, HeaderNeedsProfile, HeaderTooWide, Assembly, NotCSource, Noinstr, NoFtrace,
		KthreadMain, NotRunningSymbol, NothingRedirected, ModuleStaticKey, DataReference, ModuleUnexported, AddressTaken, CallersTooMany,
		MissingSymbol, SpecialEntry:
		return ClassNotLivepatchable
	}
	return ClassFailed
}

// What a refused patch asks of a person: the words the CLI, the event
// stream, webhooks and the dashboard all use.
const (
	ActionHandWritten   = "needs a hand-written livepatch"
	ActionPrerequisites = "needs its prerequisites: see the prerequisites offered with the patch"
)

// Action is what a patch refused with c asks of a person: a fix that does
// not compile wants the changes it lacks (the server looks for them in
// its fix source); any other refusal a livepatch written by hand.
func (c Code) Action() string {
	if c == FixDoesNotCompile {
		return ActionPrerequisites
	}
	return ActionHandWritten
}

// Codes lists every code, for documentation and tests.
func Codes() []Code {
	return []Code{NotCompiled, OtherArch, NoChange, FixDoesNotApply, FixDoesNotCompile, BadFix, BuildFailed,
		ChangedData, InitExit, HeaderNeedsProfile, HeaderTooWide, Assembly, NotCSource, Noinstr, NoFtrace,
		KthreadMain, NotRunningSymbol, NothingRedirected, ModuleStaticKey, DataReference, ModuleUnexported, AddressTaken, CallersTooMany,
		MissingSymbol, SpecialEntry}
}
