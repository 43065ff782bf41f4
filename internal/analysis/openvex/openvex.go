// Package openvex turns a kernel's applicability verdicts into an OpenVEX
// document, so that scanners and other tools can take TuxTape's answers.
package openvex

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
)

// Author is the document author when none is given.
const Author = "TuxTape"

// Options shape a document.
type Options struct {
	Author string
	Now    time.Time // document and statement timestamp
}

// ProductID names a kernel as a package URL: the Debian image package for a
// Debian kernel, a generic "linux" package otherwise.
func ProductID(k *kernel.Kernel) string {
	if d := k.Debian; d != nil {
		return fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s", d.Image, d.Version, debArch(k.Arch))
	}
	return fmt.Sprintf("pkg:generic/linux@%s?arch=%s&release=%s", k.Version, k.Arch, k.Release)
}

func debArch(a string) string {
	if a == "x86_64" {
		return "amd64"
	}
	return a
}

// Document builds the OpenVEX document of one kernel's verdicts.
func Document(k *kernel.Kernel, verdicts []gauge.Verdict, o Options) (*vex.VEX, error) {
	if o.Now.IsZero() {
		o.Now = time.Now().UTC()
	}
	if o.Author == "" {
		o.Author = Author
	}
	now := o.Now
	doc := vex.VEX{Metadata: vex.Metadata{
		Context:   vex.ContextLocator(),
		Author:    o.Author,
		Version:   1,
		Timestamp: &now,
		Tooling:   "tuxtape",
	}}
	product := vex.Product{Component: vex.Component{ID: ProductID(k)}}
	for _, v := range verdicts {
		st := vex.Statement{
			Vulnerability: vex.Vulnerability{Name: vex.VulnerabilityID(v.CVE)},
			Products:      []vex.Product{product},
			StatusNotes:   strings.Join(v.Evidence, "; "),
		}
		switch {
		case v.Status == gauge.Affected:
			st.Status = vex.StatusAffected
			st.ActionStatement = "Apply a livepatch for " + v.CVE + " or update the kernel to a version with the fix"
			if len(v.Where) > 0 {
				st.ActionStatement += " (affected code in " + strings.Join(v.Where, ", ") + ")"
			}
		case v.Status == gauge.NotAffected && (v.Reason == gauge.FixedInVersion || v.Reason == gauge.FixedByKernel):
			st.Status = vex.StatusFixed
		case v.Status == gauge.NotAffected && v.Reason == gauge.RejectedCVE:
			continue // not a vulnerability at all
		case v.Status == gauge.NotAffected:
			st.Status = vex.StatusNotAffected
			// Both "never in this version" and "not compiled in" mean the
			// vulnerable code is not in the kernel that runs.
			st.Justification = vex.VulnerableCodeNotPresent
			st.ImpactStatement = impact(v)
		default:
			st.Status = vex.StatusUnderInvestigation
		}
		if err := st.Validate(); err != nil {
			return nil, fmt.Errorf("vex statement for %s: %w", v.CVE, err)
		}
		doc.Statements = append(doc.Statements, st)
	}
	// go-vex's GenerateCanonicalID concatenates strings quadratically (20 s
	// for 15,000 statements); a hash of the statements' JSON names the
	// document as uniquely.
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", o.Author, now.Format(time.RFC3339Nano), product.ID)
	if err := json.NewEncoder(h).Encode(doc.Statements); err != nil {
		return nil, fmt.Errorf("vex document id: %w", err)
	}
	doc.ID = "https://openvex.dev/docs/public/vex-" + hex.EncodeToString(h.Sum(nil))
	return &doc, nil
}

func impact(v gauge.Verdict) string {
	switch v.Reason {
	case gauge.NotInRange:
		return "The vulnerable code was never part of this kernel version"
	case gauge.CodeNotCompiled, gauge.NotSourceFiles:
		return "The affected source files are not compiled into this kernel's configuration"
	}
	return strings.Join(v.Evidence, "; ")
}

// Write writes doc as JSON.
func Write(w io.Writer, doc *vex.VEX) error {
	return doc.ToJSON(w)
}
