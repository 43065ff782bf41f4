package klp

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
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

// ReadNamespaces reads the namespace column of a Module.symvers file.
func ReadNamespaces(path string) (Namespaces, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read export namespaces: %w", err)
	}
	defer f.Close()
	ns := Namespaces{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 5 || fields[4] == "" {
			continue
		}
		// The name goes into the module's source: nothing but an
		// identifier, whatever the file says.
		if !namespaceRE.MatchString(fields[4]) {
			return nil, fmt.Errorf("read export namespaces: %s:%d: malformed namespace %q", path, n, fields[4])
		}
		ns[fields[1]] = fields[4]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read export namespaces: %w", err)
	}
	return ns, nil
}

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
