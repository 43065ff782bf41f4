package feed

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// CustomKey is the key of TuxTape's object in a target's "custom" metadata;
// a namespace, so that other tools' custom fields can sit beside ours.
const CustomKey = "tuxtape"

// Meta is what the archive signs about a livepatch module, beside TUF's
// own length and hashes: the "tuxtape" object of the target's custom
// metadata. The repository writes it and the feed parses it, with the same
// type, so the two cannot drift.
type Meta struct {
	Kernel   string   `json:"kernel"`
	Module   string   `json:"module"`
	PatchSet string   `json:"patchset"`
	Version  int64    `json:"version"`
	CVEs     []string `json:"cves"`
	Rings    []string `json:"rings"`
	Replaces int64    `json:"replaces,omitempty"`
	// DowngradeOf is the older version whose module this version carries
	// again (a downgrade is published as a new, higher version).
	DowngradeOf int64  `json:"downgrade_of,omitempty"`
	VetReport   string `json:"vet_report,omitempty"`
}

var (
	// releaseRE is a `uname -r`: digits first, then what distributions
	// append (6.1.0-50-cloud-amd64, 6.12.33+deb13-amd64, 5.14.0-427.el9.x86_64).
	// No slash, so a release is one path element; at most 64 bytes, the
	// size of utsname's release.
	releaseRE  = regexp.MustCompile(`^[0-9]+\.[0-9]+[A-Za-z0-9._+~-]{0,60}$`)
	patchSetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+]{0,63}$`)
	// moduleRE: a loaded module's name, MODULE_NAME_LEN (56) less the NUL;
	// the kernel shows dashes as underscores.
	moduleRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,55}$`)
	ringRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
)

// ValidRelease checks a kernel release's syntax.
func ValidRelease(s string) error {
	if !releaseRE.MatchString(s) {
		return fmt.Errorf("kernel release %q: want a `uname -r` like 6.1.0-50-cloud-amd64 (digits, dots, letters, + ~ - _; at most 64 bytes)", s)
	}
	return nil
}

// ValidPatchSet checks a patch-set name. A dash is refused because the
// target's file name is <patchset>-<version>.ko.
func ValidPatchSet(s string) error {
	if !patchSetRE.MatchString(s) {
		return fmt.Errorf("patch set %q: want letters, digits, _ . + (no dash), at most 64, starting with a letter or digit", s)
	}
	return nil
}

// ValidModule checks a module name as /sys/kernel/livepatch shows it.
func ValidModule(s string) error {
	if !moduleRE.MatchString(s) {
		return fmt.Errorf("module name %q: want letters, digits and _, at most 55", s)
	}
	return nil
}

// ValidRing checks a ring's name.
func ValidRing(s string) error {
	if !ringRE.MatchString(s) {
		return fmt.Errorf("ring %q: want lower-case letters, digits and -, starting with a letter, at most 32", s)
	}
	return nil
}

// TargetPath is the TUF target path of a version: <release>/<patchset>-<version>.ko.
func TargetPath(kernel, patchSet string, version int64) string {
	return kernel + "/" + patchSet + "-" + strconv.FormatInt(version, 10) + ".ko"
}

// Validate checks every field, so that a client acts only on metadata that
// makes sense even when it is correctly signed (a repository bug, or a
// targets key in the wrong hands, must not make a host load a module for
// another kernel).
func (m *Meta) Validate() error {
	if err := ValidRelease(m.Kernel); err != nil {
		return err
	}
	if err := ValidModule(m.Module); err != nil {
		return err
	}
	if err := ValidPatchSet(m.PatchSet); err != nil {
		return err
	}
	if m.Version < 1 {
		return fmt.Errorf("version %d: want 1 or more", m.Version)
	}
	if m.Replaces < 0 || m.Replaces >= m.Version {
		return fmt.Errorf("replaces %d: want 0 (none) or a version below %d", m.Replaces, m.Version)
	}
	if m.DowngradeOf < 0 || m.DowngradeOf >= m.Version {
		return fmt.Errorf("downgrade_of %d: want 0 (none) or a version below %d", m.DowngradeOf, m.Version)
	}
	for _, id := range m.CVEs {
		if !vulns.IsCVEID(id) {
			return fmt.Errorf("CVE id %q: want CVE-YYYY-NNNN", id)
		}
	}
	if len(m.Rings) == 0 {
		return fmt.Errorf("no rings")
	}
	for _, r := range m.Rings {
		if err := ValidRing(r); err != nil {
			return err
		}
	}
	if m.VetReport != "" {
		if b, err := hex.DecodeString(m.VetReport); err != nil || len(b) != 32 || hex.EncodeToString(b) != m.VetReport {
			return fmt.Errorf("vetting report digest %q: want 64 lower-case hex digits (sha256)", m.VetReport)
		}
	}
	return nil
}

// maxCustom bounds the custom object; the whole targets file is capped by
// the updater, this keeps one entry from being most of it.
const maxCustom = 64 << 10

// ParseMeta reads and validates the custom metadata of target path. It
// refuses a path that is not the one the fields name, so that a module
// filed under one release cannot claim another.
func ParseMeta(path string, custom []byte) (*Meta, error) {
	if len(custom) == 0 {
		return nil, fmt.Errorf("target %s: no custom metadata", path)
	}
	if len(custom) > maxCustom {
		return nil, fmt.Errorf("target %s: custom metadata of %d bytes (at most %d)", path, len(custom), maxCustom)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(custom, &outer); err != nil {
		return nil, fmt.Errorf("target %s: custom metadata: %w", path, err)
	}
	raw, ok := outer[CustomKey]
	if !ok {
		return nil, fmt.Errorf("target %s: custom metadata has no %q object", path, CustomKey)
	}
	// Unknown fields are ignored: a newer archive may add some, and older
	// agents must keep working; every field they act on is validated.
	var m Meta
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("target %s: custom metadata: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("target %s: %w", path, err)
	}
	if want := TargetPath(m.Kernel, m.PatchSet, m.Version); path != want {
		return nil, fmt.Errorf("target %s: its metadata names %s (kernel %s)", path, want, m.Kernel)
	}
	return &m, nil
}

// Custom is m as a target's custom metadata.
func (m *Meta) Custom() (json.RawMessage, error) {
	b, err := json.Marshal(map[string]*Meta{CustomKey: m})
	if err != nil {
		return nil, fmt.Errorf("encode custom metadata: %w", err)
	}
	return b, nil
}
