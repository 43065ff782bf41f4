package klp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func table(object string, files []string, syms []ksym) *SymbolTable {
	st := &SymbolTable{Object: object, files: files, syms: syms, byName: map[string][]int{}}
	for i, s := range syms {
		st.byName[s.name] = append(st.byName[s.name], i)
	}
	return st
}

func TestSympos(t *testing.T) {
	// vmlinux-like: three c_start in three files (fs/proc/consoles.c is
	// the second), plus a unique global.
	vm := table("vmlinux", []string{"proc.c", "consoles.c", "proc.c"}, []ksym{
		{name: "c_start", local: true, file: 0}, {name: "show_cpuinfo", local: true, file: 0},
		{name: "c_start", local: true, file: 1}, {name: "show_console_dev", local: true, file: 1},
		{name: "c_start", local: true, file: 2}, {name: "seq_puts", file: -1},
	})
	// module-like: no STT_FILE; two units each with a _rs.3.
	var modSyms []ksym
	for _, n := range []string{"tipc_a", "tipc_b", "_rs.3"} {
		modSyms = append(modSyms, ksym{name: n, local: true, file: -1})
	}
	for i := 0; i < 20; i++ {
		modSyms = append(modSyms, ksym{name: "filler", local: true, file: -1})
	}
	for _, n := range []string{"tipc_crypto_key_rcv", "_rs.3", "tipc_aead_users_set"} {
		modSyms = append(modSyms, ksym{name: n, local: true, file: -1})
	}
	mod := table("tipc", nil, modSyms)
	for _, tc := range []struct {
		st     *SymbolTable
		name   string
		local  bool
		file   string
		locals []string
		want   int
		err    string
	}{
		{vm, "seq_puts", false, "", nil, 0, ""},
		{vm, "c_start", true, "consoles.c", []string{"show_console_dev", "c_start"}, 2, ""},
		{vm, "c_start", true, "proc.c", []string{"show_cpuinfo"}, 1, ""},
		{vm, "nope", false, "", nil, 0, "has no symbol"},
		{vm, "c_start", false, "", nil, 0, "none in the patched file"},
		{mod, "_rs.3", true, "crypto.c", []string{"tipc_crypto_key_rcv", "tipc_aead_users_set"}, 2, ""},
		{mod, "_rs.3", true, "crypto.c", nil, 0, "none in the patched file"},
	} {
		block, _ := tc.st.FileBlock(tc.file, tc.locals)
		locals := map[string]bool{}
		for _, l := range tc.locals {
			locals[l] = true
		}
		got, err := tc.st.Sympos(tc.name, tc.local, block, locals)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Sympos(%s %q) error = %v, want %q", tc.st.Object, tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Sympos(%s %q in %s) = %d, %v; want %d", tc.st.Object, tc.name, tc.file, got, err, tc.want)
		}
	}
}

func TestReadSymvers(t *testing.T) {
	p := filepath.Join(t.TempDir(), "Module.symvers")
	data := "0x1\tseq_puts\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tvirtnet_x\tdrivers/net/virtio-net\tEXPORT_SYMBOL_GPL\t\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	ex, _, err := ReadSymvers(p)
	if err != nil || ex["seq_puts"] != "vmlinux" || ex["virtnet_x"] != "virtio_net" {
		t.Errorf("ReadSymvers = %v, %v", ex, err)
	}
	if err := os.WriteFile(p, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadSymvers(p); err == nil {
		t.Error("ReadSymvers(garbage) succeeded")
	}
}

func TestReadSymbolTableStubSystemMap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "System.map")
	if err := os.WriteFile(p, []byte("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSymbolTable(p, "vmlinux"); err == nil || !strings.Contains(err.Error(), "-dbg") {
		t.Errorf("stub System.map: %v, want an error pointing at the -dbg package", err)
	}
}
