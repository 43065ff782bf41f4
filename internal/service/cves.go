package service

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/analysis/priority"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// PriorityInputs are the prioritizer's optional input files.
type PriorityInputs struct {
	KEV  string // CISA's known_exploited_vulnerabilities.json
	EPSS string // FIRST's epss_scores-DATE.csv[.gz]
}

// Load reads the input files named.
func (p PriorityInputs) Load() (priority.Inputs, error) {
	var in priority.Inputs
	var err error
	if p.KEV != "" {
		if in.KEV, err = priority.ReadKEV(p.KEV); err != nil {
			return in, err
		}
	}
	if p.EPSS != "" {
		if in.EPSS, err = priority.ReadEPSS(p.EPSS); err != nil {
			return in, err
		}
	}
	return in, nil
}

// CVEQuery selects and orders CVE records.
type CVEQuery struct {
	Since   time.Time
	File    string
	MinCVSS float64
	Status  vulns.Status
	Limit   int
	// Kernel judges each record against this kernel (and Affected keeps
	// those that need action on it).
	Kernel   string
	Affected bool
	Profile  ProfileChoice
	Sort     string // id, cvss or priority
	Priority PriorityInputs
	// Tier keeps records whose priority is of this tier or above.
	Tier string
	// Text keeps records whose ID, title, description or a program
	// file contains it, in any case.
	Text string
}

func (q *CVEQuery) check() error {
	switch q.Status {
	case "", vulns.StatusPublished, vulns.StatusRejected, vulns.StatusAnnounced:
	default:
		return invalidf("--status %q: want published, rejected or announced", q.Status)
	}
	if math.IsNaN(q.MinCVSS) || q.MinCVSS < 0 || q.MinCVSS > 10 {
		return invalidf("--min-cvss %v: want a score from 0 to 10", q.MinCVSS)
	}
	switch q.Sort {
	case "":
		q.Sort = "id"
	case "id", "cvss", "priority":
	default:
		return invalidf("--sort %q: want id, cvss or priority", q.Sort)
	}
	if q.Affected && q.Kernel == "" {
		return invalidf("--affected needs --kernel NAME")
	}
	if _, ok := priority.ParseTier(q.Tier); q.Tier != "" && !ok {
		return invalidf("--tier %q: want critical, high, medium or low (that tier and above)", q.Tier)
	}
	if len(q.Text) > 256 {
		return invalidf("--text is %d bytes long; at most 256", len(q.Text))
	}
	return q.Profile.Valid()
}

// CVE is a record as front ends show and send it, with its verdict and
// priority when a kernel or the prioritizer was asked for.
type CVE struct {
	ID            string     `json:"id"`
	Status        string     `json:"status"`
	Source        string     `json:"source"`
	Title         string     `json:"title"`
	Description   string     `json:"description"`
	FirstSeen     *time.Time `json:"first_seen,omitempty"`
	CVSS          *CVSS      `json:"cvss"`
	ProgramFiles  []string   `json:"program_files"`
	FixCommits    []string   `json:"fix_commits"`
	MainlineFix   string     `json:"mainline_fix,omitempty"`
	DefaultStatus string     `json:"default_status,omitempty"`
	Branches      []Branch   `json:"branches"`
	// With a kernel:
	Verdict  *gauge.Verdict `json:"verdict,omitempty"`
	Priority *Priority      `json:"priority,omitempty"`

	rec *vulns.Record
}

// Record is the record c was made from.
func (c *CVE) Record() *vulns.Record { return c.rec }

// CVSS is the CNA's CVSS 3.1 score.
type CVSS struct {
	Vector    string   `json:"vector"`
	Score     float64  `json:"score"`
	Severity  string   `json:"severity"`
	Scenarios []string `json:"scenarios,omitempty"`
}

// Branch is one stable branch's introducing and fixing versions.
type Branch struct {
	Branch            string `json:"branch,omitempty"`
	IntroducedVersion string `json:"introduced_version,omitempty"`
	IntroducedCommit  string `json:"introduced_commit,omitempty"`
	FixedVersion      string `json:"fixed_version,omitempty"`
	FixedCommit       string `json:"fixed_commit,omitempty"`
}

// Priority is the prioritizer's answer.
type Priority struct {
	Score   float64  `json:"score"`
	Tier    string   `json:"tier"`
	Reasons []string `json:"reasons"`
}

func newCVE(r *vulns.Record) CVE {
	out := CVE{
		ID: r.ID, Status: string(r.Status), Source: string(r.Source), Title: r.Title, Description: r.Description,
		ProgramFiles: nonNil(r.ProgramFiles), FixCommits: nonNil(r.FixCommits), MainlineFix: r.MainlineFix,
		DefaultStatus: r.DefaultStatus, Branches: []Branch{}, rec: r,
	}
	if !r.FirstSeen.IsZero() {
		t := r.FirstSeen
		out.FirstSeen = &t
	}
	if r.CVSS != nil {
		out.CVSS = &CVSS{Vector: r.CVSS.Vector, Score: r.CVSS.Score, Severity: r.CVSS.Severity, Scenarios: r.CVSS.Scenarios}
	}
	for _, b := range r.Branches {
		bj := Branch{IntroducedVersion: b.IntroducedVersion, IntroducedCommit: b.IntroducedCommit, FixedVersion: b.FixedVersion, FixedCommit: b.FixedCommit}
		v := cmp.Or(b.FixedVersion, b.IntroducedVersion)
		if pv, err := vulns.ParseVersion(v); err == nil {
			bj.Branch = pv.Branch()
		}
		out.Branches = append(out.Branches, bj)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CVEList is the answer to a CVEQuery.
type CVEList struct {
	CVEs []CVE
	// Summary counts the verdicts on the query's kernel, before
	// Affected, Tier, Text and Limit cut the list (nil without a kernel).
	Summary *VerdictSummary
}

// ListCVEs runs a query: filter in the store, judge against the kernel,
// score, rank, cut.
func (s *Service) ListCVEs(ctx context.Context, q CVEQuery) (*CVEList, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if q.Kernel != "" || q.Sort != "id" {
		limit = 0 // filter and rank first, then cut
	}
	recs, err := st.CVEs(ctx, store.Filter{Since: q.Since, File: q.File, MinCVSS: q.MinCVSS, Status: q.Status, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := &CVEList{CVEs: make([]CVE, 0, len(recs))}
	var gg *gauge.Gauge
	if q.Kernel != "" {
		if _, _, gg, err = s.kernelGauge(ctx, st, q.Kernel, q.Profile); err != nil {
			return nil, err
		}
		out.Summary = &VerdictSummary{By: map[string]int{}}
	}
	for i := range recs {
		c := newCVE(&recs[i])
		if gg != nil {
			v := gg.Judge(&recs[i])
			c.Verdict = &v
			out.Summary.add(&v)
			if q.Affected && !v.Counts() {
				continue
			}
		}
		out.CVEs = append(out.CVEs, c)
	}
	if err := s.score(out.CVEs, q.Priority); err != nil {
		return nil, err
	}
	out.CVEs = slices.DeleteFunc(out.CVEs, func(c CVE) bool { return !q.keeps(&c) })
	sortCVEs(out.CVEs, q.Sort)
	if q.Limit > 0 && len(out.CVEs) > q.Limit {
		out.CVEs = out.CVEs[:q.Limit]
	}
	return out, nil
}

// keeps applies the tier and text filters, which need the priority.
func (q *CVEQuery) keeps(c *CVE) bool {
	if q.Tier != "" {
		min, _ := priority.ParseTier(q.Tier)
		if priority.Tier(c.Priority.Tier).Rank() < min.Rank() {
			return false
		}
	}
	if q.Text == "" {
		return true
	}
	text := strings.ToLower(q.Text)
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), text) }
	return has(c.ID) || has(c.Title) || has(c.Description) || slices.ContainsFunc(c.ProgramFiles, has)
}

// ShowOptions shape ShowCVE.
type ShowOptions struct {
	Kernel   string
	Profile  ProfileChoice
	Priority PriorityInputs
}

// ShowCVE returns one record, with its priority and, for a kernel, its
// verdict and evidence.
func (s *Service) ShowCVE(ctx context.Context, id string, o ShowOptions) (*CVE, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	if !strings.HasPrefix(id, "CVE-") || strings.Count(id, "-") != 2 {
		return nil, invalidf("%q is not a CVE ID (want e.g. CVE-2025-21703)", id)
	}
	if err := o.Profile.Valid(); err != nil {
		return nil, err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	r, err := st.CVE(ctx, id)
	if err != nil {
		return nil, notFound("cve", err)
	}
	c := newCVE(&r)
	if o.Kernel != "" {
		_, _, gg, err := s.kernelGauge(ctx, st, o.Kernel, o.Profile)
		if err != nil {
			return nil, err
		}
		v := gg.Judge(&r)
		c.Verdict = &v
	}
	cs := []CVE{c}
	if err := s.score(cs, o.Priority); err != nil {
		return nil, err
	}
	return &cs[0], nil
}

// kernelGauge loads a kernel and the profile its verdicts use.
func (s *Service) kernelGauge(ctx context.Context, st store.Store, name string, pc ProfileChoice) (*kernel.Kernel, *profile.Profile, *gauge.Gauge, error) {
	k, err := st.Kernel(ctx, name)
	if err != nil {
		return nil, nil, nil, notFound("kernel", err)
	}
	p, err := s.profile(ctx, st, k, ProfileOptions{Choice: pc})
	if err != nil {
		return nil, nil, nil, err
	}
	gg, err := gauge.ForKernel(k, p)
	if err != nil {
		return nil, nil, nil, err
	}
	return k, p, gg, nil
}

// score fills in each CVE's priority.
func (s *Service) score(cs []CVE, p PriorityInputs) error {
	in, err := s.priorityInputs(p)
	if err != nil {
		return err
	}
	for i := range cs {
		in.Placement = placement(cs[i].Verdict)
		pr := priority.Score(cs[i].rec, in)
		cs[i].Priority = &Priority{Score: pr.Score, Tier: string(pr.Tier), Reasons: pr.Reasons}
	}
	return nil
}

// placement tells the prioritizer where a kernel builds the affected code,
// from the files the gauge placed; verdicts settled by version or left
// unknown say nothing about the build.
func placement(v *gauge.Verdict) priority.Placement {
	if v == nil || len(v.Files) == 0 || v.Status == gauge.Unknown {
		return priority.Placement{}
	}
	targets := make(map[string][]string, len(v.Files))
	for _, f := range v.Files {
		if len(f.Targets) > 0 {
			targets[f.Path] = f.Targets
		}
	}
	paths := make([]string, 0, len(v.Files))
	for _, f := range v.Files {
		paths = append(paths, f.Path)
	}
	return priority.Place(paths, func(p string) ([]string, bool) {
		t, ok := targets[p]
		return t, ok
	})
}

// sortCVEs orders by CVE number, CNA score or priority (highest first);
// ties keep CVE order.
func sortCVEs(cs []CVE, by string) {
	key := func(c *CVE) float64 {
		switch by {
		case "cvss":
			if c.rec.CVSS == nil {
				return -1
			}
			return c.rec.CVSS.Score
		case "priority":
			return c.Priority.Score
		}
		return 0
	}
	slices.SortStableFunc(cs, func(a, b CVE) int { return cmp.Compare(key(&b), key(&a)) })
}

// VerdictSummary counts verdicts by outcome and reason.
type VerdictSummary struct {
	Total   int            `json:"total"`
	Vmlinux int            `json:"affected_vmlinux"`
	Modules int            `json:"affected_modules_only"`
	By      map[string]int `json:"by"`
}

func (s *VerdictSummary) add(v *gauge.Verdict) {
	s.Total++
	key := string(v.Status)
	if v.Status != gauge.Affected {
		key += " (" + string(v.Reason) + ")"
	} else if slices.Contains(v.Where, profile.Vmlinux) {
		s.Vmlinux++
	} else if len(v.Where) > 0 {
		s.Modules++
	}
	s.By[key]++
}

func (s *VerdictSummary) String() string {
	keys := make([]string, 0, len(s.By))
	for k := range s.By {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		part := fmt.Sprintf("%d %s", s.By[k], k)
		if k == string(gauge.Affected) && s.Vmlinux+s.Modules > 0 {
			part += fmt.Sprintf(" [%d in vmlinux, %d only in modules]", s.Vmlinux, s.Modules)
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("%d records: %s", s.Total, strings.Join(parts, ", "))
}
