package klp

import (
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/build/elfobj"
)

func TestSymversNamespaces(t *testing.T) {
	for _, tt := range []struct {
		name, symvers string
		want          Namespaces
		err           string
	}{
		{"namespaced and plain", "0x4bad1b03\tcrypto_cipher_setkey\tvmlinux\tEXPORT_SYMBOL_GPL\tCRYPTO_INTERNAL\n0x1\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x2\told\tvmlinux\tEXPORT_SYMBOL\n",
			Namespaces{"crypto_cipher_setkey": "CRYPTO_INTERNAL"}, ""},
		{"module-only export", "0x1\tkvm_thing\tvmlinux\tEXPORT_SYMBOL_GPL\tmodule:kvm,kvm-intel\n", Namespaces{"kvm_thing": "module:kvm,kvm-intel"}, ""},
		{"hostile namespace", "0x1\tx\tvmlinux\tEXPORT_SYMBOL\tNS\");evil(\"\n", nil, "malformed namespace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "Module.symvers")
			if err := os.WriteFile(path, []byte(tt.symvers), 0o644); err != nil {
				t.Fatal(err)
			}
			_, got, err := ReadSymvers(path)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ReadSymvers namespaces = %v, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) || got["crypto_cipher_setkey"] != tt.want["crypto_cipher_setkey"] || got["kvm_thing"] != tt.want["kvm_thing"] {
				t.Fatalf("ReadSymvers namespaces = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	ns := Namespaces{"crypto_cipher_setkey": "CRYPTO_INTERNAL", "dma_buf_get": "DMA_BUF", "kvm_thing": "module:kvm"}
	unit := &Extracted{File: &elfobj.File{Symbols: []*elfobj.Symbol{
		{Name: "kvm_thing", Bind: elf.STB_GLOBAL, Shndx: elf.SHN_UNDEF},
		{Name: "crypto_cipher_setkey", Bind: elf.STB_GLOBAL, Shndx: elf.SHN_UNDEF},
		{Name: "printk", Bind: elf.STB_GLOBAL, Shndx: elf.SHN_UNDEF},
		// Defined in the patch: no import needed.
		{Name: "dma_buf_get", Bind: elf.STB_LOCAL, Section: &elfobj.Section{Name: ".text"}},
	}}}
	if got := ns.imports([]*Extracted{unit, unit}); !slices.Equal(got, []string{"CRYPTO_INTERNAL"}) {
		t.Errorf("imports = %v, want [CRYPTO_INTERNAL]", got)
	}
}
