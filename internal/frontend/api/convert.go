package api

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/service"
	pb "github.com/tuxtape/tuxtape/proto/tuxtape/v1"
)

// The conversions between the service's results and the wire types, both
// ways: the server sends what the service returns, and the CLI turns it
// back into the same result, so that it prints what a local command does.

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromTS(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// CVEToProto is the wire form of a CVE.
func CVEToProto(c *service.CVE) *pb.CVE {
	out := &pb.CVE{
		Id: c.ID, Status: c.Status, Source: c.Source, Title: c.Title, Description: c.Description,
		ProgramFiles: c.ProgramFiles, FixCommits: c.FixCommits, MainlineFix: c.MainlineFix, DefaultStatus: c.DefaultStatus,
	}
	if c.FirstSeen != nil {
		out.FirstSeen = timestamppb.New(*c.FirstSeen)
	}
	if c.CVSS != nil {
		out.Cvss = &pb.CVSS{Vector: c.CVSS.Vector, Score: c.CVSS.Score, Severity: c.CVSS.Severity, Scenarios: c.CVSS.Scenarios}
	}
	for _, b := range c.Branches {
		out.Branches = append(out.Branches, &pb.Branch{Branch: b.Branch, IntroducedVersion: b.IntroducedVersion, IntroducedCommit: b.IntroducedCommit, FixedVersion: b.FixedVersion, FixedCommit: b.FixedCommit})
	}
	if v := c.Verdict; v != nil {
		pv := &pb.Verdict{Cve: v.CVE, Kernel: v.Kernel, Status: string(v.Status), Reason: string(v.Reason), TreatAsAffected: v.TreatAsAffected, Where: v.Where, Evidence: v.Evidence}
		for _, f := range v.Files {
			pv.Files = append(pv.Files, &pb.FileVerdict{Path: f.Path, Targets: f.Targets, How: f.How})
		}
		out.Verdict = pv
	}
	if p := c.Priority; p != nil {
		out.Priority = &pb.Priority{Score: p.Score, Tier: p.Tier, Reasons: p.Reasons}
	}
	return out
}

// nonNil keeps empty lists as [] in JSON, as the service's results do.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CVEFromProto is the service's result for a wire CVE.
func CVEFromProto(p *pb.CVE) service.CVE {
	c := service.CVE{
		ID: p.Id, Status: p.Status, Source: p.Source, Title: p.Title, Description: p.Description,
		ProgramFiles: nonNil(p.ProgramFiles), FixCommits: nonNil(p.FixCommits), MainlineFix: p.MainlineFix, DefaultStatus: p.DefaultStatus,
		Branches: []service.Branch{},
	}
	if p.FirstSeen != nil {
		t := p.FirstSeen.AsTime()
		c.FirstSeen = &t
	}
	if p.Cvss != nil {
		c.CVSS = &service.CVSS{Vector: p.Cvss.Vector, Score: p.Cvss.Score, Severity: p.Cvss.Severity, Scenarios: p.Cvss.Scenarios}
	}
	for _, b := range p.Branches {
		c.Branches = append(c.Branches, service.Branch{Branch: b.Branch, IntroducedVersion: b.IntroducedVersion, IntroducedCommit: b.IntroducedCommit, FixedVersion: b.FixedVersion, FixedCommit: b.FixedCommit})
	}
	if pv := p.Verdict; pv != nil {
		v := &gauge.Verdict{CVE: pv.Cve, Kernel: pv.Kernel, Status: gauge.Status(pv.Status), Reason: gauge.Reason(pv.Reason), TreatAsAffected: pv.TreatAsAffected, Where: pv.Where, Evidence: nonNil(pv.Evidence)}
		for _, f := range pv.Files {
			v.Files = append(v.Files, gauge.FileVerdict{Path: f.Path, Targets: f.Targets, How: f.How})
		}
		c.Verdict = v
	}
	if pp := p.Priority; pp != nil {
		c.Priority = &service.Priority{Score: pp.Score, Tier: pp.Tier, Reasons: nonNil(pp.Reasons)}
	}
	return c
}

// SummaryToProto is the wire form of a verdict summary (nil stays nil).
func SummaryToProto(s *service.VerdictSummary) *pb.VerdictSummary {
	if s == nil {
		return nil
	}
	out := &pb.VerdictSummary{Total: int32(s.Total), AffectedVmlinux: int32(s.Vmlinux), AffectedModulesOnly: int32(s.Modules), By: map[string]int32{}}
	for k, n := range s.By {
		out.By[k] = int32(n)
	}
	return out
}

// SummaryFromProto is the service's summary for a wire one.
func SummaryFromProto(p *pb.VerdictSummary) *service.VerdictSummary {
	if p == nil {
		return nil
	}
	s := &service.VerdictSummary{Total: int(p.Total), Vmlinux: int(p.AffectedVmlinux), Modules: int(p.AffectedModulesOnly), By: map[string]int{}}
	for k, n := range p.By {
		s.By[k] = int(n)
	}
	return s
}

// KernelToProto is the wire form of a kernel view.
func KernelToProto(v service.KernelView) *pb.Kernel {
	k := v.Kernel
	out := &pb.Kernel{
		Name: k.Name, Release: k.Release, Version: k.Version, Arch: k.Arch,
		Source:    &pb.KernelSource{Kind: string(k.Source.Kind), Spec: k.Source.Spec, Ref: k.Source.Ref},
		FixedCves: k.FixedCVEs, FixedCommits: k.FixedCommits, Added: ts(k.Added),
		ConfigSha256: v.ConfigSHA256, Profiles: map[string]*timestamppb.Timestamp{}, Config: k.Config, Exercise: k.Exercise,
	}
	for _, p := range k.Source.Patches {
		out.Source.Patches = append(out.Source.Patches, &pb.Patch{Name: p.Name, Data: p.Data})
	}
	if d := k.Debian; d != nil {
		out.Debian = &pb.Debian{Version: d.Version, Image: d.Image, Headers: d.Headers, Debug: d.Debug, Source: d.Source}
	}
	for kind, t := range v.Profiles {
		out.Profiles[kind] = timestamppb.New(t)
	}
	return out
}

// KernelFromProto is the service's kernel view for a wire kernel.
func KernelFromProto(p *pb.Kernel) service.KernelView {
	k := &kernel.Kernel{Name: p.Name, Release: p.Release, Version: p.Version, Arch: p.Arch, FixedCVEs: p.FixedCves, FixedCommits: p.FixedCommits,
		Added: fromTS(p.Added), Config: p.Config, Exercise: p.Exercise}
	if s := p.Source; s != nil {
		k.Source = kernel.Source{Kind: kernel.SourceKind(s.Kind), Spec: s.Spec, Ref: s.Ref}
		for _, pt := range s.Patches {
			k.Source.Patches = append(k.Source.Patches, kernel.Patch{Name: pt.Name, Data: pt.Data})
		}
	}
	if d := p.Debian; d != nil {
		k.Debian = &kernel.Debian{Version: d.Version, Image: d.Image, Headers: d.Headers, Debug: d.Debug, Source: d.Source}
	}
	v := service.KernelView{Kernel: k, ConfigSHA256: p.ConfigSha256, Profiles: map[string]time.Time{}}
	for kind, t := range p.Profiles {
		v.Profiles[kind] = t.AsTime()
	}
	return v
}

// TokenToProto is the wire form of a token (never its hash).
func TokenToProto(t authz.Token) *pb.Token {
	return &pb.Token{Id: t.ID, Role: string(t.Role), Machine: t.Machine, Created: ts(t.Created), Expires: ts(t.Expires), Revoked: ts(t.Revoked)}
}

// TokenFromProto is the token a wire token describes.
func TokenFromProto(p *pb.Token) authz.Token {
	return authz.Token{ID: p.Id, Role: authz.Role(p.Role), Machine: p.Machine, Created: fromTS(p.Created), Expires: fromTS(p.Expires), Revoked: fromTS(p.Revoked)}
}

// AuditToProto is the wire form of an audit entry.
func AuditToProto(e authz.AuditEntry) *pb.AuditEntry {
	return &pb.AuditEntry{At: ts(e.At), Actor: e.Actor, Action: e.Action, Target: e.Target, From: e.From, Detail: e.Detail}
}

// AuditFromProto is the audit entry a wire entry describes.
func AuditFromProto(p *pb.AuditEntry) authz.AuditEntry {
	return authz.AuditEntry{At: fromTS(p.At), Actor: p.Actor, Action: p.Action, Target: p.Target, From: p.From, Detail: p.Detail}
}
