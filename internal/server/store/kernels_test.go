package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func TestKernels(t *testing.T) {
	ctx := context.Background()
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			src, _ := kernel.ParseSource("debian:linux-source-6.1=6.1.176-1", "")
			k := &kernel.Kernel{Name: "cloud", Release: "6.1.0-50-cloud-amd64", Version: "6.1.176", Arch: "x86_64",
				Config: []byte("CONFIG_X86_64=y\nCONFIG_EXT4_FS=m\n"), Source: src, Debian: kernel.DebianFor("6.1.0-50-cloud-amd64", "6.1.176-1"),
				FixedCVEs: []string{"CVE-2024-1086"}}
			if err := st.AddKernel(ctx, k); err != nil {
				t.Fatal(err)
			}
			if err := st.AddKernel(ctx, k); !errors.Is(err, store.ErrExists) {
				t.Errorf("second add: %v, want ErrExists", err)
			}
			bad := *k
			bad.Name, bad.Version = "bad", "six"
			if err := st.AddKernel(ctx, &bad); !errors.Is(err, kernel.ErrInvalid) {
				t.Errorf("bad version: %v, want ErrInvalid", err)
			}
			got, err := st.Kernel(ctx, "cloud")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, k) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, k)
			}
			if _, err := st.Kernel(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing kernel: %v", err)
			}
			p := &profile.Profile{Kind: profile.KindReal, Units: []profile.Unit{
				{Source: "fs/ext4/inode.c", Object: "fs/ext4/inode.o", Target: "ext4"},
				{Source: "init/main.c", Object: "init/main.o", Target: "vmlinux"},
			}, Deps: map[string][]int32{"include/linux/fs.h": {0, 1}}}
			if err := st.PutProfile(ctx, "cloud", p); err != nil {
				t.Fatal(err)
			}
			if err := st.PutProfile(ctx, "nope", p); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("profile of a missing kernel: %v", err)
			}
			gotP, _, err := st.Profile(ctx, "cloud", profile.KindReal)
			if err != nil || !reflect.DeepEqual(gotP, p) {
				t.Errorf("profile round trip: %v\n got %+v\nwant %+v", err, gotP, p)
			}
			if _, _, err := st.Profile(ctx, "cloud", profile.KindStatic); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing static profile: %v", err)
			}
			kinds, err := st.ProfileKinds(ctx, "cloud")
			if err != nil || len(kinds) != 1 {
				t.Errorf("profile kinds: %v %v", kinds, err)
			}
			ks, err := st.Kernels(ctx)
			if err != nil || len(ks) != 1 {
				t.Fatalf("kernels: %v %v", ks, err)
			}
			if err := st.RemoveKernel(ctx, "cloud"); err != nil {
				t.Fatal(err)
			}
			if err := st.RemoveKernel(ctx, "cloud"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("second remove: %v", err)
			}
			if _, _, err := st.Profile(ctx, "cloud", profile.KindReal); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("profile survived its kernel: %v", err)
			}
		})
	}
}
