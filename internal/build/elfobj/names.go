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
//   - names kernel macros paste __COUNTER__ or __LINE__ onto lose the
//     number: __UNIQUE_ID_<prefix>N, BTF_ID's __BTF_ID__<kind>__<name>__N,
//     UVERBS_OBJECT_METHODS' _object_methods_<id>N, DECLARE_PCI_FIXUP's
//     __pci_fixup_<name>N (a fix elsewhere in the file shifts them all).
//
// C identifiers contain no dots, so every all-digit dot-separated part of a
// symbol name is compiler numbering.
func NormalizeName(name string) string {
	for _, prefix := range numberedPrefixes {
		if rest, ok := strings.CutPrefix(name, prefix); ok && !strings.Contains(rest, ".") {
			return prefix + strings.TrimRight(rest, "0123456789")
		}
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

// numberedPrefixes start the names of objects kernel macros number with
// __COUNTER__ or __LINE__ (include/linux/compiler.h, btf_ids.h, pci.h,
// rdma/uverbs_named_ioctl.h).
var numberedPrefixes = []string{"__UNIQUE_ID_", "__BTF_ID__", "_object_methods_", "__pci_fixup_"}

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
