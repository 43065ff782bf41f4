package klp

import (
	"debug/elf"
	"regexp"
	"slices"
	"strings"
)

// Namespaces are the symbol namespaces of namespaced exports
// (EXPORT_SYMBOL_NS: crypto_cipher_setkey is in CRYPTO_INTERNAL), by
// symbol. A module that uses such an export must import its namespace, or
// modpost refuses it; the patched code of a module that imports one uses
// them as the module does.
type Namespaces map[string]string

// namespaceRE: an identifier, or a "module:NAME[,NAME…]" namespace
// (EXPORT_SYMBOL_FOR_MODULES: the export is only for those modules).
var namespaceRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z0-9_,.*-]+)?$`)

// imports lists the namespaces the units' undefined symbols are in.
func (ns Namespaces) imports(units []*Extracted) []string {
	var out []string
	for _, u := range units {
		for _, s := range u.File.Symbols {
			if s.Section == nil && s.Shndx == elf.SHN_UNDEF && s.Name != "" {
				// A module-only export cannot be imported; modpost says so.
				if n, ok := ns[s.Name]; ok && !strings.HasPrefix(n, "module:") && !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
