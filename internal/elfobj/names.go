package elfobj

import "strings"

// NormalizeName returns name without the numbering compilers add, so that
// the same entity compiled twice gets the same key:
//
//   - clone suffixes keep their kind but lose their number:
//     foo.isra.0, foo.constprop.3, foo.part.1, foo.cold.2 → foo.isra,
//     foo.constprop, foo.part, foo.cold (a clone of another kind is a
//     different function: its calling convention differs);
//   - numbered static locals lose the number: count.12 → count,
//     __func__.3 → __func__;
//   - LLVM's promoted-local suffix goes: foo.llvm.123456 → foo;
//   - the kernel's __UNIQUE_ID_<prefix><__COUNTER__> loses the counter.
//
// C identifiers contain no dots, so every all-digit dot-separated part of a
// symbol name is compiler numbering.
func NormalizeName(name string) string {
	if rest, ok := strings.CutPrefix(name, "__UNIQUE_ID_"); ok && !strings.Contains(rest, ".") {
		return "__UNIQUE_ID_" + strings.TrimRight(rest, "0123456789")
	}
	if !strings.Contains(name, ".") {
		return name
	}
	parts := strings.Split(name, ".")
	out := parts[:1]
	for i := 1; i < len(parts); i++ {
		p := parts[i]
		if isDigits(p) {
			continue
		}
		if p == "llvm" && i+1 < len(parts) && isDigits(parts[i+1]) {
			i++
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ".")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// coldParent returns the function a GCC cold part (foo.cold, foo.cold.3)
// was split from.
func coldParent(name string) (string, bool) {
	if i := strings.LastIndex(name, ".cold"); i > 0 {
		rest := name[i+len(".cold"):]
		if rest == "" || (rest[0] == '.' && isDigits(rest[1:])) {
			return name[:i], true
		}
	}
	return "", false
}
