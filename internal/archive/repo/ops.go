package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/tuxtape/tuxtape/internal/archive/feed"
	"github.com/tuxtape/tuxtape/internal/atomicfile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// PublishOptions say what to publish.
type PublishOptions struct {
	Module   string   // path of the .ko
	Kernel   string   // the kernel release (uname -r) it is built for
	PatchSet string   // the patch set's name
	CVEs     []string // the CVEs it fixes
	Ring     string   // the first ring it goes to (default the first ring)
	// Replaces is the version it replaces; 0 means the newest version
	// published for the kernel now.
	Replaces  int64
	VetReport string // sha256 hex of the vetting report, optional
	// AllowPlainModule publishes a module without livepatch=Y in its
	// .modinfo (tests, or a module loaded some other way).
	AllowPlainModule bool
}

// MaxModuleSize is the largest module Publish takes (the feed's cap).
const MaxModuleSize = feed.MaxModuleSize

// Publish adds a module as the next version for its kernel release.
func (r *Repo) Publish(ctx context.Context, o PublishOptions) (*feed.Release, error) {
	if err := feed.ValidRelease(o.Kernel); err != nil {
		return nil, invalidf("publish: %v", err)
	}
	if err := feed.ValidPatchSet(o.PatchSet); err != nil {
		return nil, invalidf("publish: %v", err)
	}
	cves, err := checkCVEs(o.CVEs)
	if err != nil {
		return nil, err
	}
	rings, err := r.ringsUpTo(o.Ring)
	if err != nil {
		return nil, err
	}
	vet := strings.ToLower(strings.TrimSpace(o.VetReport))
	if b, err := hex.DecodeString(vet); vet != "" && (err != nil || len(b) != 32) {
		return nil, invalidf("publish: vetting report digest %q: want a sha256 in hex (64 digits)", o.VetReport)
	}
	fi, err := os.Stat(o.Module)
	if err != nil {
		return nil, invalidf("publish: module: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxModuleSize {
		return nil, invalidf("publish: module %s: want a regular file of at most %d bytes", o.Module, MaxModuleSize)
	}
	data, err := os.ReadFile(o.Module)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	mi, err := readModinfo(data)
	if err != nil {
		return nil, invalidf("publish: module %s: %v", o.Module, err)
	}
	if vm, _, _ := strings.Cut(mi.Vermagic, " "); vm != "" && vm != o.Kernel {
		return nil, invalidf("publish: module %s was built for kernel %s (vermagic), not %s", o.Module, vm, o.Kernel)
	}
	if !mi.Livepatch && !o.AllowPlainModule {
		return nil, invalidf("publish: module %s is not a livepatch (no livepatch=Y in .modinfo)", o.Module)
	}
	name := moduleName(mi, o.Module)
	if err := feed.ValidModule(name); err != nil {
		return nil, invalidf("publish: module %s: %v", o.Module, err)
	}
	var out *feed.Release
	err = r.change(func(st *state) error {
		m := &feed.Meta{Kernel: o.Kernel, Module: name, PatchSet: o.PatchSet, CVEs: cves, Rings: rings, Replaces: o.Replaces, VetReport: vet}
		rel, err := r.add(ctx, st, m, data)
		out = rel
		return err
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("published", "target", out.Target, "rings", out.Rings, "cves", len(out.CVEs))
	return out, nil
}

// add gives m the next version of its kernel, writes the module and
// publishes the new targets.
func (r *Repo) add(ctx context.Context, st *state, m *feed.Meta, data []byte) (*feed.Release, error) {
	rels, err := releases(st, m.Kernel)
	if err != nil {
		return nil, err
	}
	vs, err := r.loadVersions()
	if err != nil {
		return nil, err
	}
	newest := int64(0)
	if len(rels) > 0 {
		newest = rels[0].Version
	}
	m.Version = max(newest, vs.Highest[m.Kernel]) + 1
	if m.Replaces == 0 {
		m.Replaces = newest
	}
	if m.Replaces >= m.Version || m.Replaces < 0 {
		return nil, invalidf("publish: replaces %d: want a version below %d", m.Replaces, m.Version)
	}
	if err := m.Validate(); err != nil {
		return nil, invalidf("publish: %v", err)
	}
	path := feed.TargetPath(m.Kernel, m.PatchSet, m.Version)
	custom, err := m.Custom()
	if err != nil {
		return nil, err
	}
	tf, err := metadata.TargetFile().FromBytes(path, data, "sha256")
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	tf.Custom = &custom
	// The number is taken before anything is published: a failure later
	// leaves a gap, never a reused version.
	vs.Highest[m.Kernel] = m.Version
	if err := r.writeJSON("state.json", vs, 0o644); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	// Consistent snapshot name: <sha256>.<file>, under the release's dir.
	dir := filepath.Join(r.targetsDir(), m.Kernel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	file := filepath.Join(dir, hexSum(data)+"."+filepath.Base(path))
	if err := atomicfile.WriteFile(file, data, 0o644); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	st.targets.Signed.Targets[path] = tf
	if err := r.commit(ctx, st, true, true); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return feed.ReleaseOf(path, tf)
}

func checkCVEs(in []string) ([]string, error) {
	out := []string{}
	for _, id := range in {
		id = strings.ToUpper(strings.TrimSpace(id))
		if id == "" {
			continue
		}
		if !vulns.IsCVEID(id) {
			return nil, invalidf("CVE id %q: want CVE-YYYY-NNNN", id)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, vulns.CompareIDs)
	return out, nil
}

// ringsUpTo is the rings from the first to ring (the first when "").
func (r *Repo) ringsUpTo(ring string) ([]string, error) {
	if ring == "" {
		return slices.Clone(r.cfg.Rings[:1]), nil
	}
	i := slices.Index(r.cfg.Rings, ring)
	if i < 0 {
		return nil, invalidf("ring %q: this archive's rings are %s", ring, strings.Join(r.cfg.Rings, ", "))
	}
	return slices.Clone(r.cfg.Rings[:i+1]), nil
}

// Promote moves a version to ring (the next ring after its last when ""),
// as a new targets version.
func (r *Repo) Promote(ctx context.Context, kernel string, version int64, ring string) (*feed.Release, error) {
	if ring != "" {
		if _, err := r.ringsUpTo(ring); err != nil {
			return nil, err
		}
	}
	var out *feed.Release
	err := r.change(func(st *state) error {
		rel, tf, err := find(st, kernel, version)
		if err != nil {
			return err
		}
		last := -1
		for _, g := range rel.Rings {
			last = max(last, slices.Index(r.cfg.Rings, g))
		}
		to := ring
		if to == "" {
			if last+1 >= len(r.cfg.Rings) {
				return invalidf("promote %s: already in the last ring, %s", rel.Target, r.cfg.Rings[len(r.cfg.Rings)-1])
			}
			to = r.cfg.Rings[last+1]
		}
		if slices.Index(r.cfg.Rings, to) <= last {
			return invalidf("promote %s: already in %s (rings %s)", rel.Target, to, strings.Join(rel.Rings, ", "))
		}
		rings, _ := r.ringsUpTo(to)
		m, err := feed.ParseMeta(rel.Target, *tf.Custom)
		if err != nil {
			return err
		}
		m.Rings = rings
		custom, err := m.Custom()
		if err != nil {
			return err
		}
		ntf := *tf
		ntf.Custom = &custom
		st.targets.Signed.Targets[rel.Target] = &ntf
		if err := r.commit(ctx, st, true, true); err != nil {
			return fmt.Errorf("promote: %w", err)
		}
		out, err = feed.ReleaseOf(rel.Target, &ntf)
		return err
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("promoted", "target", out.Target, "rings", out.Rings)
	return out, nil
}

// Revoke withdraws a version: the new targets no longer list it. Hosts
// that applied it keep it until a newer version replaces it (publish one,
// or Downgrade).
func (r *Repo) Revoke(ctx context.Context, kernel string, version int64) (*feed.Release, error) {
	var out *feed.Release
	err := r.change(func(st *state) error {
		rel, _, err := find(st, kernel, version)
		if err != nil {
			return err
		}
		delete(st.targets.Signed.Targets, rel.Target)
		if err := r.commit(ctx, st, true, true); err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		out = rel
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("revoked", "target", out.Target)
	return out, nil
}

// Downgrade publishes the module of an older version again as a new,
// higher version (TUF allows no rollback, and a host takes only higher
// versions), in ring (default: every ring the newest version is in, so
// that the hosts running it get the older module back).
func (r *Repo) Downgrade(ctx context.Context, kernel string, to int64, ring string) (*feed.Release, error) {
	var out *feed.Release
	err := r.change(func(st *state) error {
		old, data, err := r.oldVersion(st, kernel, to)
		if err != nil {
			return err
		}
		rels, err := releases(st, kernel)
		if err != nil {
			return err
		}
		var rings []string
		switch {
		case ring != "":
			if rings, err = r.ringsUpTo(ring); err != nil {
				return err
			}
		case len(rels) > 0:
			rings = rels[0].Rings
		default:
			rings = old.Rings
		}
		m := &feed.Meta{Kernel: kernel, Module: old.Module, PatchSet: old.PatchSet, CVEs: old.CVEs, Rings: rings, VetReport: old.VetReport, DowngradeOf: old.Version}
		out, err = r.add(ctx, st, m, data)
		return err
	})
	if err != nil {
		return nil, err
	}
	r.log.Info("downgraded", "target", out.Target, "module of", to)
	return out, nil
}

// oldVersion finds version of kernel in the current targets or, if it was
// revoked since, in older targets versions, with its module's bytes
// (checked against the digest that was signed).
func (r *Repo) oldVersion(st *state, kernel string, version int64) (*feed.Release, []byte, error) {
	if err := feed.ValidRelease(kernel); err != nil {
		return nil, nil, invalidf("%v", err)
	}
	path := ""
	for n := st.targets.Signed.Version; n >= 1; n-- {
		t := st.targets
		if n != st.targets.Signed.Version {
			var err error
			t, err = metadata.Targets().FromFile(filepath.Join(r.metaDir(), fmt.Sprintf("%d.targets.json", n)))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, nil, err
			}
		}
		for p, tf := range t.Signed.Targets {
			if !strings.HasPrefix(p, kernel+"/") {
				continue
			}
			rel, err := feed.ReleaseOf(p, tf)
			if err != nil || rel.Version != version {
				continue
			}
			path = filepath.Join(r.targetsDir(), kernel, rel.SHA256+"."+filepath.Base(p))
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, nil, fmt.Errorf("downgrade: module of version %d: %w", version, err)
			}
			if hexSum(data) != rel.SHA256 {
				return nil, nil, fmt.Errorf("downgrade: %s does not match its signed sha256 %s", path, rel.SHA256)
			}
			return rel, data, nil
		}
	}
	return nil, nil, notFoundf("version %d of kernel %s was never published", version, kernel)
}

// RotateKey replaces every key of role with a new one, in a new root
// version signed by the old root keys and the new (for role root both
// sets count, so clients holding the old root follow). The metadata of a
// rotated role is re-signed with the new key at once. Old keys are retired.
func (r *Repo) RotateKey(ctx context.Context, role string) error {
	if err := checkRole(role); err != nil {
		return err
	}
	err := r.change(func(st *state) error {
		prev, err := metadata.Root().FromBytes(mustBytes(st.root))
		if err != nil {
			return err
		}
		oldRoot, err := r.signers(ctx, prev, metadata.ROOT)
		if err != nil {
			return fmt.Errorf("rotate %s: %w", role, err)
		}
		oldIDs := slices.Clone(st.root.Signed.Roles[role].KeyIDs)
		for _, id := range oldIDs {
			if err := st.root.Signed.RevokeKey(id, role); err != nil {
				return fmt.Errorf("rotate %s: %w", role, err)
			}
		}
		n := max(len(oldIDs), st.root.Signed.Roles[role].Threshold)
		for range n {
			s, err := r.keys.Generate(ctx, role)
			if err != nil {
				return fmt.Errorf("rotate %s: %w", role, err)
			}
			k, err := tufKey(s)
			if err != nil {
				return err
			}
			if err := st.root.Signed.AddKey(k, role); err != nil {
				return fmt.Errorf("rotate %s: %w", role, err)
			}
		}
		st.root.Signed.Version++
		st.root.Signed.Expires = r.expires(metadata.ROOT, r.now().UTC())
		if err := r.writeRoot(ctx, st, prev, oldRoot); err != nil {
			return fmt.Errorf("rotate %s: %w", role, err)
		}
		// The new root is out; now the metadata the new keys sign.
		if err := r.commit(ctx, st, role == metadata.TARGETS, role == metadata.SNAPSHOT); err != nil {
			return fmt.Errorf("rotate %s: re-sign: %w (run refresh to retry)", role, err)
		}
		for _, id := range oldIDs {
			if err := r.keys.Retire(ctx, role, id); err != nil {
				r.log.Warn("retire key", "role", role, "key", id, "err", err)
			}
		}
		return nil
	})
	if err == nil {
		r.log.Info("rotated keys", "role", role)
	}
	return err
}

func mustBytes(md *metadata.Metadata[metadata.RootType]) []byte {
	b, _ := md.ToBytes(false)
	return b
}

// Renewed says what Refresh re-signed.
type Renewed struct {
	Roles     []string  `json:"roles"`
	Timestamp time.Time `json:"timestamp_expires"`
}

// Refresh re-signs the timestamp, and the snapshot, targets or root when
// less than half their validity is left; run it from cron more often than
// the timestamp expiry. Root is renewed only when its keys are at hand
// (otherwise Status shows the coming expiry).
func (r *Repo) Refresh(ctx context.Context) (Renewed, error) {
	var out Renewed
	err := r.change(func(st *state) error {
		now := r.now().UTC()
		due := func(role string, exp time.Time) bool {
			return exp.Sub(now) < r.cfg.Expiry.of(role)/2
		}
		if due(metadata.ROOT, st.root.Signed.Expires) {
			if _, err := r.signers(ctx, st.root, metadata.ROOT); err != nil {
				r.log.Warn("root expires soon and its keys are not at hand", "expires", st.root.Signed.Expires, "err", err)
			} else {
				prev, err := metadata.Root().FromBytes(mustBytes(st.root))
				if err != nil {
					return err
				}
				st.root.Signed.Version++
				st.root.Signed.Expires = r.expires(metadata.ROOT, now)
				if err := r.writeRoot(ctx, st, prev, nil); err != nil {
					return fmt.Errorf("refresh root: %w", err)
				}
				out.Roles = append(out.Roles, metadata.ROOT)
			}
		}
		targets := due(metadata.TARGETS, st.targets.Signed.Expires)
		snapshot := targets || due(metadata.SNAPSHOT, st.snapshot.Signed.Expires)
		if targets {
			out.Roles = append(out.Roles, metadata.TARGETS)
		}
		if snapshot {
			out.Roles = append(out.Roles, metadata.SNAPSHOT)
		}
		out.Roles = append(out.Roles, metadata.TIMESTAMP)
		if err := r.commit(ctx, st, targets, snapshot); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
		out.Timestamp = st.timestamp.Signed.Expires
		return nil
	})
	return out, err
}

// RoleStatus is one role's published metadata.
type RoleStatus struct {
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	Threshold int       `json:"threshold"`
	Keys      []string  `json:"keys"`
	Expired   bool      `json:"expired,omitempty"`
}

// KernelStatus is a kernel release's versions.
type KernelStatus struct {
	Kernel   string           `json:"kernel"`
	Latest   map[string]int64 `json:"latest"` // ring → newest version in it
	Versions []feed.Release   `json:"versions"`
}

// Status is the archive at a glance.
type Status struct {
	Dir     string                `json:"dir"`
	Rings   []string              `json:"rings"`
	Roles   map[string]RoleStatus `json:"roles"`
	Kernels []KernelStatus        `json:"kernels"`
}

// Status reads the published state (no lock: it only reads files that are
// replaced atomically).
func (r *Repo) Status(ctx context.Context) (*Status, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := r.load()
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := &Status{Dir: r.dir, Rings: r.cfg.Rings, Roles: map[string]RoleStatus{}, Kernels: []KernelStatus{}}
	role := func(name string, version int64, exp time.Time) {
		rl := st.root.Signed.Roles[name]
		out.Roles[name] = RoleStatus{Version: version, Expires: exp, Threshold: rl.Threshold, Keys: rl.KeyIDs, Expired: now.After(exp)}
	}
	role(metadata.ROOT, st.root.Signed.Version, st.root.Signed.Expires)
	role(metadata.TARGETS, st.targets.Signed.Version, st.targets.Signed.Expires)
	role(metadata.SNAPSHOT, st.snapshot.Signed.Version, st.snapshot.Signed.Expires)
	role(metadata.TIMESTAMP, st.timestamp.Signed.Version, st.timestamp.Signed.Expires)
	kernels := map[string]bool{}
	for p := range st.targets.Signed.Targets {
		if k, _, ok := strings.Cut(p, "/"); ok {
			kernels[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(kernels)) {
		rels, err := releases(st, k)
		if err != nil {
			return nil, err
		}
		ks := KernelStatus{Kernel: k, Latest: map[string]int64{}, Versions: rels}
		for _, rel := range rels {
			for _, g := range rel.Rings {
				if ks.Latest[g] == 0 {
					ks.Latest[g] = rel.Version
				}
			}
		}
		out.Kernels = append(out.Kernels, ks)
	}
	return out, nil
}
