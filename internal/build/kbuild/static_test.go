package kbuild

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/kconfig"
	"github.com/tuxtape/tuxtape/internal/model/profile"
)

// want is what Lookup should say about a file; a nil targets means the
// file is not compiled at all.
type want struct {
	targets  []string
	direct   bool
	possible bool
}

var (
	inVmlinux    = want{targets: []string{profile.Vmlinux}, direct: true}
	depOfVmlinux = want{targets: []string{profile.Vmlinux}}
	absent       = want{}
)

func inModule(m string) want { return want{targets: []string{m}, direct: true} }

func checkProfile(t *testing.T, p *profile.Profile, files map[string]want) {
	t.Helper()
	ix := profile.NewIndex(p)
	for _, f := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		w := files[f]
		got, ok := ix.Lookup(f)
		if w.targets == nil {
			if ok {
				t.Errorf("%s: got %v (direct=%v), want not compiled", f, got.Targets, got.Direct)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: not compiled, want %v", f, w.targets)
			continue
		}
		if !slices.Equal(got.Targets, w.targets) || got.Direct != w.direct || got.Possible != w.possible {
			t.Errorf("%s: got %v direct=%v possible=%v, want %v direct=%v possible=%v",
				f, got.Targets, got.Direct, got.Possible, w.targets, w.direct, w.possible)
		}
	}
}

func treeConfig(t *testing.T, overrides map[string]string) kconfig.Config {
	t.Helper()
	cfg, err := kconfig.ReadConfig(filepath.Join("testdata", "tree.config"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range overrides {
		if v == "" {
			delete(cfg.Values, k)
		} else {
			cfg.Values[k] = v
		}
	}
	return cfg
}

// TestStaticTree evaluates testdata/tree, a small tree made of excerpts of
// the Makefiles of Linux 6.1.176 with empty stand-ins for the sources.
func TestStaticTree(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		files     map[string]want
	}{
		{
			name: "x86_64 with modules",
			files: map[string]want{
				// init/: obj-y, ifneq/else, a built-in composite (mounts-y).
				"init/main.c":             inVmlinux,
				"init/do_mounts.c":        inVmlinux,
				"init/do_mounts_initrd.c": inVmlinux,
				"init/do_mounts_rd.c":     absent,
				"init/initramfs.c":        inVmlinux,
				"init/noinitramfs.c":      absent,
				// $(BITS) from arch/x86/Makefile; head objects are obj-y.
				"arch/x86/kernel/head_64.S":    inVmlinux,
				"arch/x86/kernel/head64.c":     inVmlinux,
				"arch/x86/kernel/head_32.S":    absent,
				"arch/x86/kernel/process_64.c": inVmlinux,
				"arch/x86/kernel/sys_ia32.c":   absent,
				// obj-$(subst m,y,$(CONFIG_HYPERV)) += hyperv/
				"arch/x86/hyperv/hv_init.c": inVmlinux,
				"arch/x86/hyperv/hv_apic.c": inVmlinux,
				// libs-y: arch/x86/lib/lib.a is linked into vmlinux.
				"arch/x86/lib/delay.c":     inVmlinux,
				"arch/x86/lib/memcpy_64.S": inVmlinux,
				"arch/x86/lib/inat.c":      inVmlinux,
				"arch/x86/lib/string_32.c": absent,
				"arch/x86/lib/msr.c":       inVmlinux,
				"arch/x86/lib/msr-smp.c":   inVmlinux,
				// drivers-$(CONFIG_PCI) += arch/x86/pci/ (ARCH_DRIVERS)
				"arch/x86/pci/mmconfig_64.c": inVmlinux,
				"arch/x86/pci/direct.c":      inVmlinux,
				"arch/x86/pci/pcbios.c":      absent,
				"kernel/fork.c":              inVmlinux,
				"kernel/kmod.c":              inVmlinux,
				"kernel/module/livepatch.c":  inVmlinux,
				"kernel/power/main.c":        inVmlinux,
				"kernel/power/hibernate.c":   absent,
				// .c files #included by compiled .c files are deps.
				"kernel/sched/fair.c":           inVmlinux,
				"kernel/sched/build_policy.c":   inVmlinux,
				"kernel/sched/rt.c":             depOfVmlinux,
				"kernel/sched/cpudeadline.c":    depOfVmlinux,
				"kernel/locking/rtmutex_api.c":  inVmlinux,
				"kernel/locking/rtmutex.c":      depOfVmlinux,
				"kernel/locking/ww_rt_mutex.c":  absent,
				"kernel/locking/lockdep_proc.c": absent,
				// A module composite with -$(CONFIG_X) parts.
				"fs/ext4/inode.c":                  inModule("ext4"),
				"fs/ext4/acl.c":                    inModule("ext4"),
				"fs/ext4/crypto.c":                 absent,
				"fs/ext4/inode-test.c":             absent,
				"fs/jbd2/journal.c":                inModule("jbd2"),
				"fs/buffer.c":                      inVmlinux,
				"fs/no-block.c":                    absent,
				"fs/notify/inotify/inotify_user.c": inVmlinux,
				// Directories under obj-m; a bool option's part of a module.
				"drivers/net/wireguard/noise.c":                  inModule("wireguard"),
				"drivers/net/ipvlan/ipvlan_l3s.c":                inModule("ipvlan"),
				"drivers/net/ipvlan/ipvtap.c":                    inModule("ipvtap"),
				"drivers/net/virtio_net.c":                       inModule("virtio_net"),
				"drivers/net/loopback.c":                         inVmlinux,
				"drivers/gpu/drm/drm_file.c":                     inModule("drm"),
				"drivers/gpu/drm/drm_bufs.c":                     absent,
				"drivers/gpu/drm/drm_panel_orientation_quirks.c": inVmlinux,
				"drivers/gpu/drm/i915/i915_driver.c":             absent,
				"drivers/gpu/host1x/bus.c":                       absent,
				// lib-y, obj-y and a $(foreach ...$(eval)) in lib/.
				"lib/ctype.c":                       inVmlinux,
				"lib/sort.c":                        inVmlinux,
				"lib/cpumask.c":                     inVmlinux,
				"lib/fdt.c":                         absent,
				"lib/zlib_inflate/inflate.c":        inVmlinux,
				"lib/decompress_inflate.c":          inVmlinux,
				"net/sched/sch_netem.c":             inModule("sch_netem"),
				"net/sched/sch_fq_codel.c":          inVmlinux,
				"net/sched/sch_htb.c":               absent,
				"net/netfilter/core.c":              inVmlinux,
				"net/netfilter/nf_conntrack_core.c": inModule("nf_conntrack"),
				// else ifeq chains and $(subst m,y,...) in a composite.
				"net/netfilter/nf_conntrack_bpf.c":          inModule("nf_conntrack"),
				"net/netfilter/nf_conntrack_proto_icmpv6.c": inModule("nf_conntrack"),
				"net/core/sock.c":                           inVmlinux,
				"net/ethernet/eth.c":                        inVmlinux,
			},
		},
		{
			name: "i386 without modules",
			overrides: map[string]string{
				"CONFIG_64BIT": "", "CONFIG_X86_64": "", "CONFIG_X86_32": "y", "CONFIG_MODULES": "",
				"CONFIG_EXT4_FS": "y", "CONFIG_JBD2": "y", "CONFIG_NET_SCH_NETEM": "y", "CONFIG_NF_CONNTRACK": "y",
				"CONFIG_WIREGUARD": "y", "CONFIG_IPVLAN": "y", "CONFIG_IPVTAP": "y", "CONFIG_VIRTIO_NET": "y",
				"CONFIG_DRM": "y", "CONFIG_HYPERV": "y", "CONFIG_SMP": "",
			},
			files: map[string]want{
				// #include "cpudeadline.c" is under #ifdef CONFIG_SMP.
				"kernel/sched/cpudeadline.c":       absent,
				"kernel/sched/rt.c":                depOfVmlinux,
				"lib/cpumask.c":                    absent,
				"arch/x86/kernel/head_32.S":        inVmlinux,
				"arch/x86/kernel/head32.c":         inVmlinux,
				"arch/x86/kernel/head64.c":         absent,
				"arch/x86/kernel/sys_ia32.c":       inVmlinux,
				"arch/x86/lib/string_32.c":         inVmlinux,
				"arch/x86/lib/atomic64_32.c":       inVmlinux,
				"arch/x86/lib/memcpy_64.S":         absent,
				"arch/x86/pci/mmconfig_32.c":       inVmlinux,
				"arch/x86/hyperv/hv_apic.c":        absent,
				"kernel/kmod.c":                    absent,
				"kernel/module/main.c":             absent,
				"fs/ext4/inode.c":                  inVmlinux,
				"fs/jbd2/journal.c":                inVmlinux,
				"net/netfilter/nf_conntrack_bpf.c": inVmlinux,
				"drivers/gpu/drm/drm_file.c":       inVmlinux,
				"drivers/net/wireguard/noise.c":    inVmlinux,
				"drivers/net/ipvlan/ipvtap.c":      inVmlinux,
			},
		},
		{
			name:      "i915 and kvmgt as modules",
			overrides: map[string]string{"CONFIG_DRM_I915": "m", "CONFIG_DRM_I915_GVT_KVMGT": "m"},
			files: map[string]want{
				"drivers/gpu/drm/i915/i915_driver.c":       inModule("i915"),
				"drivers/gpu/drm/i915/gt/gen2_engine_cs.c": inModule("i915"),
				"drivers/gpu/drm/i915/gvt/aperture_gm.c":   inModule("kvmgt"),
			},
		},
		{
			name:      "module-only parent: its built-in objects are not built",
			overrides: map[string]string{"CONFIG_NF_CONNTRACK": "y", "CONFIG_NETFILTER": "", "CONFIG_NET_SCH_FQ_CODEL": ""},
			files: map[string]want{
				"net/netfilter/core.c":              absent,
				"net/netfilter/nf_conntrack_core.c": absent,
				"net/sched/sch_fq_codel.c":          absent,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Static(context.Background(), filepath.Join("testdata", "tree"), treeConfig(t, tc.overrides), StaticOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Warnings) > 0 {
				t.Errorf("unexpected warnings:\n%s", strings.Join(p.Warnings, "\n"))
			}
			checkProfile(t, p, tc.files)
			if !slices.IsSortedFunc(p.Units, func(a, b profile.Unit) int {
				return strings.Compare(a.Source+"\x00"+a.Object, b.Source+"\x00"+b.Object)
			}) {
				t.Error("units are not sorted")
			}
			for d, us := range p.Deps {
				for _, i := range us {
					if int(i) >= len(p.Units) {
						t.Errorf("dep %s: index %d out of range", d, i)
					}
				}
			}
		})
	}
}

// miniTree writes a tree with the few files every tree needs and files.
func miniTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	base := map[string]string{
		"Makefile":          "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 176\nEXTRAVERSION =\n",
		"arch/x86/Makefile": "BITS := 64\nexport BITS\nlibs-y += arch/x86/lib/\n",
	}
	for k, v := range files {
		base[k] = v
	}
	for name, content := range base {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestStaticConstructs covers Kbuild rules and the conservative answers
// on small made-up trees.
func TestStaticConstructs(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		config   map[string]string
		want     map[string]want
		warnings []string // substrings, one warning each
	}{
		{
			name: "shell in a condition: both branches, possibly",
			files: map[string]string{
				"Kbuild": "obj-y += a/\n",
				"a/Makefile": "obj-y += sure.o\n" +
					"ifeq ($(shell uname -m),x86_64)\nobj-y += one.o\nelse\nobj-y += other.o\nendif\n",
				"a/sure.c": "", "a/one.c": "", "a/other.c": "",
			},
			want: map[string]want{
				"a/sure.c":  inVmlinux,
				"a/one.c":   {targets: []string{profile.Vmlinux}, direct: true, possible: true},
				"a/other.c": {targets: []string{profile.Vmlinux}, direct: true, possible: true},
			},
			warnings: []string{"a/Makefile:2: condition depends on $(shell ...) cannot be evaluated statically; 2 object(s) counted as possibly compiled: a/one.o, a/other.o"},
		},
		{
			name: "undecidable list variable name",
			files: map[string]string{
				"Kbuild":     "obj-y += a/\n",
				"a/Makefile": "obj-$(shell test -e /x && echo y) += odd.o\n",
				"a/odd.c":    "",
			},
			want:     map[string]want{"a/odd.c": {targets: []string{profile.Vmlinux}, direct: true, possible: true}},
			warnings: []string{"a/Makefile:1: $(shell ...) cannot be evaluated statically; 1 object(s) counted as possibly compiled: a/odd.o"},
		},
		{
			name: "toolchain test deciding an object",
			files: map[string]string{
				"Kbuild":     "obj-y += a/\n",
				"a/Makefile": "obj-$(call cc-option-yn,-mfoo) += probe.o\nccflags-y += $(call cc-option,-mbar)\n",
				"a/probe.c":  "",
			},
			want:     map[string]want{"a/probe.c": {targets: []string{profile.Vmlinux}, direct: true, possible: true}},
			warnings: []string{"a/Makefile:1: toolchain test assumed to pass; 1 object(s) counted as possibly compiled: a/probe.o"},
		},
		{
			name:   "directories: obj-m only, subdir-y, Kbuild over Makefile, missing",
			config: map[string]string{"CONFIG_M": "m", "CONFIG_B": "y"},
			files: map[string]string{
				"Kbuild": "obj-$(CONFIG_M) += m/\nsubdir-y += s/\nobj-y += k/ gone/\n",
				// A bool option in a directory reached through obj-m only:
				// Kbuild builds no built-in.a there.
				"m/Makefile": "obj-$(CONFIG_M) += mod.o\nobj-$(CONFIG_B) += lost.o\n",
				"m/mod.c":    "", "m/lost.c": "",
				"s/Makefile":   "obj-y += notbuilt.o\nobj-m += notmod.o\n",
				"s/notbuilt.c": "", "s/notmod.c": "",
				"k/Kbuild":       "obj-y += fromkbuild.o\n",
				"k/Makefile":     "obj-y += frommakefile.o\n",
				"k/fromkbuild.c": "", "k/frommakefile.c": "",
			},
			want: map[string]want{
				"m/mod.c":          inModule("mod"),
				"m/lost.c":         absent,
				"s/notbuilt.c":     absent,
				"s/notmod.c":       absent,
				"k/fromkbuild.c":   inVmlinux,
				"k/frommakefile.c": absent,
			},
			warnings: []string{"gone: directory to descend into has no Kbuild or Makefile"},
		},
		{
			name:   "composites: nested, empty, -m parts, names with dashes, both built-in and module",
			config: map[string]string{"CONFIG_M": "m", "CONFIG_Y": "y"},
			files: map[string]string{
				"Kbuild": "obj-y += c/\n",
				"c/Makefile": "obj-$(CONFIG_M) += outer-mod.o\nouter-mod-y := part.o inner.o\ninner-y := deep.o\n" +
					"obj-y += empty.o\nempty-$(CONFIG_UNSET) += never.o\n" +
					"obj-m += mpart.o\nmpart-m := viam.o\n" +
					"obj-y += shared.o\nobj-m += shared2.o\nshared2-objs := shared.o own.o\n" +
					"obj-y += twice.o\nobj-m += twice.o\n",
				"c/part.c": "", "c/deep.c": "", "c/empty.c": "", "c/never.c": "", "c/viam.c": "",
				"c/shared.c": "", "c/own.c": "", "c/twice.c": "",
			},
			want: map[string]want{
				"c/part.c":   inModule("outer_mod"),
				"c/deep.c":   inModule("outer_mod"),
				"c/empty.c":  absent,
				"c/never.c":  absent,
				"c/viam.c":   inModule("mpart"),
				"c/shared.c": {targets: []string{profile.Vmlinux, "shared2"}, direct: true},
				"c/own.c":    inModule("shared2"),
				"c/twice.c":  inVmlinux,
			},
		},
		{
			name:   "sources: .S, rules, shipped, asn1, generated, rust",
			config: map[string]string{"CONFIG_RUST": "y"},
			files: map[string]string{
				"Kbuild": "obj-y += g/\n",
				"g/Makefile": "obj-y += entry.o elsewhere.o table.o rsapubkey.asn1.o gen.o helpers.o\n" +
					"$(obj)/elsewhere.o: $(srctree)/lib/elsewhere.c FORCE\n\t$(call if_changed_rule,cc_o_c)\n",
				"g/entry.S":         "",
				"lib/elsewhere.c":   "",
				"g/table.c_shipped": "",
				"g/rsapubkey.asn1":  "",
				"g/helpers.rs":      "",
			},
			want: map[string]want{
				"g/entry.S":          inVmlinux,
				"lib/elsewhere.c":    inVmlinux,
				"g/table.c":          inVmlinux,
				"g/table.c_shipped":  depOfVmlinux,
				"g/rsapubkey.asn1.c": inVmlinux,
				"g/rsapubkey.asn1":   depOfVmlinux,
				"g/helpers.rs":       inVmlinux,
			},
			warnings: []string{"g/Makefile: g/gen.o has no source in the tree (gen.c, gen.S): generated at build time; left out"},
		},
		{
			name: "includes: other makefiles, .c files, lib-y outside libs-y",
			files: map[string]string{
				"Kbuild":                "obj-y += i/ arch/x86/lib/ other/\n",
				"i/Makefile":            "include $(src)/sub/Makefile.inc\n-include $(obj)/.missing.d\nobj-y += top.o\n",
				"i/sub/Makefile.inc":    "obj-y += sub/in.o\n",
				"i/sub/in.c":            "#include \"../helper.c\"\n#include <lib/angle.c>\n",
				"i/helper.c":            "  #  include \"nested.c\"\n#include \"missing.c\"\n",
				"i/nested.c":            "",
				"lib/angle.c":           "",
				"i/top.c":               "#include \"top.h\"\n",
				"arch/x86/lib/Makefile": "lib-y += l.o\n",
				"arch/x86/lib/l.c":      "",
				"other/Makefile":        "lib-y += notlinked.o\n",
				"other/notlinked.c":     "",
			},
			want: map[string]want{
				"i/sub/in.c":        inVmlinux,
				"i/helper.c":        depOfVmlinux,
				"i/nested.c":        depOfVmlinux,
				"lib/angle.c":       depOfVmlinux,
				"i/top.c":           inVmlinux,
				"arch/x86/lib/l.c":  inVmlinux,
				"other/notlinked.c": absent,
			},
		},
		{
			name:   "make language: quoted ifeq, else ifdef, functions, $(error)",
			config: map[string]string{"CONFIG_A": "y", "CONFIG_S": `"one two"`},
			files: map[string]string{
				"Kbuild": "obj-y += f/\n",
				"f/Makefile": `ifeq "$(CONFIG_A)" "y"
obj-y += quoted.o
endif
ifdef CONFIG_UNSET
obj-y += no1.o
else ifdef CONFIG_A
obj-y += chained.o
else
obj-y += no2.o
endif
names := alpha beta
obj-y += $(addsuffix .o,$(names))
obj-y += $(patsubst %,word_%.o,$(CONFIG_S))
parts = $(foreach p,x y,$(p)part.o)
obj-y += $(parts:part.o=part_.o)
pick = $(if $(filter y,$(1)),picked.o,notpicked.o)
obj-y += $(call pick,$(CONFIG_A))
obj-$(or $(CONFIG_UNSET),$(CONFIG_A)) += viaor.o
obj-$(and $(CONFIG_A),$(CONFIG_UNSET)) += viaand.o
ifneq ($(wildcard $(srctree)/$(src)/exists.c),)
obj-y += exists.o
endif
ifeq ($(CONFIG_UNSET),y)
$(error unreachable)
endif
ifeq ($(CONFIG_A),y)
$(error reachable)
endif
`,
				"f/quoted.c": "", "f/no1.c": "", "f/chained.c": "", "f/no2.c": "", "f/alpha.c": "", "f/beta.c": "",
				"f/word_one.c": "", "f/word_two.c": "", "f/xpart_.c": "", "f/ypart_.c": "", "f/picked.c": "",
				"f/notpicked.c": "", "f/viaor.c": "", "f/viaand.c": "", "f/exists.c": "",
			},
			want: map[string]want{
				"f/quoted.c": inVmlinux, "f/no1.c": absent, "f/chained.c": inVmlinux, "f/no2.c": absent,
				"f/alpha.c": inVmlinux, "f/beta.c": inVmlinux, "f/word_one.c": inVmlinux, "f/word_two.c": inVmlinux,
				"f/xpart_.c": inVmlinux, "f/ypart_.c": inVmlinux, "f/picked.c": inVmlinux, "f/notpicked.c": absent,
				"f/viaor.c": inVmlinux, "f/viaand.c": absent, "f/exists.c": inVmlinux,
			},
			warnings: []string{"f/Makefile:27: $(error reachable) reached: make would stop here"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := miniTree(t, tc.files)
			cfg := kconfig.Config{Values: map[string]string{"CONFIG_64BIT": "y", "CONFIG_MODULES": "y", "CONFIG_GCC_VERSION": "120200"}}
			for k, v := range tc.config {
				cfg.Values[k] = v
			}
			p, err := Static(context.Background(), dir, cfg, StaticOptions{Jobs: 2})
			if err != nil {
				t.Fatal(err)
			}
			checkProfile(t, p, tc.want)
			if len(p.Warnings) != len(tc.warnings) {
				t.Errorf("got warnings:\n%s\nwant %d", strings.Join(p.Warnings, "\n"), len(tc.warnings))
			}
			for _, w := range tc.warnings {
				if !slices.ContainsFunc(p.Warnings, func(s string) bool { return strings.Contains(s, w) }) {
					t.Errorf("no warning contains %q; got:\n%s", w, strings.Join(p.Warnings, "\n"))
				}
			}
		})
	}
}

func TestStaticRefusals(t *testing.T) {
	dir := miniTree(t, map[string]string{"Kbuild": ""})
	tests := []struct {
		name string
		dir  string
		cfg  kconfig.Config
		want string
	}{
		{"other version", dir, kconfig.Config{Values: map[string]string{"CONFIG_64BIT": "y"}, Arch: "x86", Version: "6.6.1"}, "config is for Linux 6.6.1, the source is 6.1.176"},
		{"other arch", dir, kconfig.Config{Values: map[string]string{"CONFIG_64BIT": "y"}, Arch: "arm64", Version: "6.1.176"}, "config is for arm64"},
		{"not a tree", t.TempDir(), kconfig.Config{}, "no top-level Kbuild"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Static(context.Background(), tc.dir, tc.cfg, StaticOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Another stable release of the same kernel is fine.
	if _, err := Static(context.Background(), dir, kconfig.Config{Values: map[string]string{"CONFIG_64BIT": "y"}, Arch: "x86", Version: "6.1.170"}, StaticOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Static(ctx, filepath.Join("testdata", "tree"), treeConfig(t, nil), StaticOptions{}); err == nil {
		t.Fatal("no error from a cancelled context")
	}
}
