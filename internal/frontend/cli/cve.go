package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

func newCVECmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cve",
		Short: "Query the CVE records in the database",
	}
	cmd.AddCommand(newCVEListCmd(g), newCVEShowCmd(g))
	return cmd
}

// CVEListOptions are the flags of `tuxtape cve list`.
type CVEListOptions struct {
	Since   string
	File    string
	MinCVSS float64
	Status  string
	Limit   int
	JSON    bool
	// With a kernel: verdicts, and the priority inputs.
	Kernel   string
	Affected bool
	Sort     string
	Profile  string
	Priority PriorityFlags
}

func newCVEListCmd(g *Globals) *cobra.Command {
	var o CVEListOptions
	cmd := &cobra.Command{
		Use:   "list [--since DATE] [--file PATH] [--min-cvss N] [--status S] [--kernel NAME [--affected]] [--sort priority]",
		Short: "List CVE records",
		Long: `list prints the CVE records that match every filter given, by CVE number.

--since takes a date (2026-08-01) or a duration back from now (72h, 30d): records
carry no publication date, so the date is when the record first appeared in the
repository's history (or, for announced-only records, when the mail was read).
--file matches a source file exactly or everything under a directory (net/sched).

--kernel NAME adds each record's verdict for that kernel (affected, not_affected
or unknown, the reason, and where the code is built: vmlinux or a module), using
the kernel's real build profile when it has one, else its static profile.
--affected keeps the records that need action (affected, or unknown and treated
as affected). --sort priority ranks by the prioritizer's score (CNA CVSS and its
scenario, CISA KEV, EPSS, subsystem, and for a kernel where the code is built).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCVEList(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Since, "since", "", "only records first seen on or after this date (YYYY-MM-DD) or within this duration (72h, 30d)")
	f.StringVar(&o.File, "file", "", "only records whose programFiles include this file or directory")
	f.Float64Var(&o.MinCVSS, "min-cvss", 0, "only records the CNA scored at least this CVSS 3.1 base score")
	f.StringVar(&o.Status, "status", "", "only records with this status: published, rejected or announced")
	f.IntVar(&o.Limit, "limit", 0, "print at most this many records")
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	f.StringVar(&o.Kernel, "kernel", "", "judge each record against this kernel (see tuxtape kernel list)")
	f.BoolVar(&o.Affected, "affected", false, "with --kernel: only records that need action on it")
	f.StringVar(&o.Sort, "sort", "id", "order: id, cvss or priority")
	f.StringVar(&o.Profile, "profile", "", "with --kernel: build profile to use: real, static or none (default: real if built, else static)")
	o.Priority.add(f)
	return cmd
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if strings.HasSuffix(s, "d") {
		if n, err := strconv.Atoi(strings.TrimSuffix(s, "d")); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--since %q: want a date like 2026-08-01 or a duration like 72h or 30d", s)
}

func runCVEList(ctx context.Context, g *Globals, o CVEListOptions) error {
	since, err := parseSince(o.Since, time.Now())
	if err != nil {
		return err
	}
	switch vulns.Status(o.Status) {
	case "", vulns.StatusPublished, vulns.StatusRejected, vulns.StatusAnnounced:
	default:
		return usagef("--status %q: want published, rejected or announced", o.Status)
	}
	if o.MinCVSS < 0 || o.MinCVSS > 10 {
		return usagef("--min-cvss %v: want a score from 0 to 10", o.MinCVSS)
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	switch o.Sort {
	case "id", "cvss", "priority":
	default:
		return usagef("--sort %q: want id, cvss or priority", o.Sort)
	}
	if o.Affected && o.Kernel == "" {
		return usagef("--affected needs --kernel NAME")
	}
	limit := o.Limit
	if o.Kernel != "" || o.Sort != "id" {
		limit = 0 // filter and rank first, then cut
	}
	recs, err := st.CVEs(ctx, store.Filter{Since: since, File: o.File, MinCVSS: o.MinCVSS, Status: vulns.Status(o.Status), Limit: limit})
	if err != nil {
		return err
	}
	rows := make([]listRow, len(recs))
	for i := range recs {
		rows[i].rec = &recs[i]
	}
	if o.Kernel != "" {
		_, _, gg, err := g.kernelGauge(ctx, st, o.Kernel, ProfileFlag(o.Profile))
		if err != nil {
			return err
		}
		kept := rows[:0]
		var sum verdictSummary
		for _, r := range rows {
			v := gg.Judge(r.rec)
			r.verdict = &v
			sum.add(&v)
			if !o.Affected || v.Counts() {
				kept = append(kept, r)
			}
		}
		rows = kept
		if !o.JSON && !g.Quiet {
			defer fmt.Fprintf(g.Stderr, "%s: %s\n", o.Kernel, sum.String())
		}
	}
	if err := o.Priority.score(rows); err != nil {
		return err
	}
	sortRows(rows, o.Sort)
	if o.Limit > 0 && len(rows) > o.Limit {
		rows = rows[:o.Limit]
	}
	if o.JSON {
		out := make([]cveJSON, len(rows))
		for i, r := range rows {
			out[i] = toJSON(r.rec)
			out[i].Verdict = r.verdict
			out[i].Priority = r.priority
		}
		return writeJSON(g.Stdout, out)
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	if o.Kernel != "" {
		fmt.Fprintln(tw, "CVE\tVERDICT\tWHERE\tPRIORITY\tCVSS\tFILES\tTITLE")
	} else {
		fmt.Fprintln(tw, "CVE\tSTATUS\tPRIORITY\tCVSS\tFIRST SEEN\tFILES\tTITLE")
	}
	for _, row := range rows {
		r := row.rec
		score := "-"
		if r.CVSS != nil {
			score = strconv.FormatFloat(r.CVSS.Score, 'f', 1, 64)
		}
		seen := "-"
		if !r.FirstSeen.IsZero() {
			seen = r.FirstSeen.Format("2006-01-02")
		}
		files := strings.Join(r.ProgramFiles, ",")
		if len(r.ProgramFiles) > 1 {
			files = fmt.Sprintf("%s (+%d)", r.ProgramFiles[0], len(r.ProgramFiles)-1)
		}
		prio := "-"
		if row.priority != nil {
			prio = fmt.Sprintf("%s %.0f", row.priority.Tier, row.priority.Score)
		}
		if v := row.verdict; v != nil {
			verdict := string(v.Status)
			if v.Status != gauge.Affected {
				verdict += " (" + string(v.Reason) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, verdict, orDash(targetsShort(v.Where)), prio, score, files, truncate(r.Title, 60))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, prio, score, seen, files, truncate(r.Title, 70))
	}
	return tw.Flush()
}

// verdictSummary counts verdicts by outcome and reason.
type verdictSummary struct {
	total, vmlinux, modules int
	by                      map[string]int
}

func (s *verdictSummary) add(v *gauge.Verdict) {
	if s.by == nil {
		s.by = map[string]int{}
	}
	s.total++
	key := string(v.Status)
	if v.Status != gauge.Affected {
		key += " (" + string(v.Reason) + ")"
	} else if slices.Contains(v.Where, profile.Vmlinux) {
		s.vmlinux++
	} else if len(v.Where) > 0 {
		s.modules++
	}
	s.by[key]++
}

func (s *verdictSummary) String() string {
	keys := make([]string, 0, len(s.by))
	for k := range s.by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		part := fmt.Sprintf("%d %s", s.by[k], k)
		if k == string(gauge.Affected) && s.vmlinux+s.modules > 0 {
			part += fmt.Sprintf(" [%d in vmlinux, %d only in modules]", s.vmlinux, s.modules)
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("%d records: %s", s.total, strings.Join(parts, ", "))
}

func targetsShort(ts []string) string {
	if len(ts) > 3 {
		return strings.Join(ts[:3], ",") + fmt.Sprintf(" (+%d)", len(ts)-3)
	}
	return strings.Join(ts, ",")
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// CVEShowOptions are the flags of `tuxtape cve show`.
type CVEShowOptions struct {
	JSON     bool
	Kernel   string
	Profile  string
	Priority PriorityFlags
}

func newCVEShowCmd(g *Globals) *cobra.Command {
	var o CVEShowOptions
	cmd := &cobra.Command{
		Use:   "show CVE-ID",
		Short: "Show one CVE record: description, CVSS, files, per-branch fixes",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("cve show takes one CVE ID, like CVE-2025-21703")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCVEShow(cmd.Context(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.JSON, "json", false, "print JSON")
	f.StringVar(&o.Kernel, "kernel", "", "also give the verdict for this kernel, with its reason and evidence")
	f.StringVar(&o.Profile, "profile", "", "with --kernel: build profile to use: real, static or none")
	o.Priority.add(f)
	return cmd
}

func runCVEShow(ctx context.Context, g *Globals, o CVEShowOptions, id string) error {
	id = strings.ToUpper(strings.TrimSpace(id))
	if !strings.HasPrefix(id, "CVE-") || strings.Count(id, "-") != 2 {
		return usagef("%q is not a CVE ID (want e.g. CVE-2025-21703)", id)
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := st.CVE(ctx, id)
	if err != nil {
		return err
	}
	row := listRow{rec: &r}
	if o.Kernel != "" {
		_, _, gg, err := g.kernelGauge(ctx, st, o.Kernel, ProfileFlag(o.Profile))
		if err != nil {
			return err
		}
		v := gg.Judge(&r)
		row.verdict = &v
	}
	rows := []listRow{row}
	if err := o.Priority.score(rows); err != nil {
		return err
	}
	row = rows[0]
	if o.JSON {
		j := toJSON(&r)
		j.Verdict, j.Priority = row.verdict, row.priority
		return writeJSON(g.Stdout, j)
	}
	printCVE(g.Stdout, &r)
	if row.priority != nil {
		fmt.Fprintf(g.Stdout, "\npriority:    %s (%.0f)\n", row.priority.Tier, row.priority.Score)
		for _, why := range row.priority.Reasons {
			fmt.Fprintf(g.Stdout, "  - %s\n", why)
		}
	}
	if v := row.verdict; v != nil {
		fmt.Fprintf(g.Stdout, "\nkernel %s: %s (%s)\n", v.Kernel, v.Status, v.Reason)
		if v.TreatAsAffected {
			fmt.Fprintln(g.Stdout, "  treated as affected")
		}
		if len(v.Where) > 0 {
			fmt.Fprintf(g.Stdout, "  built into: %s\n", strings.Join(v.Where, ", "))
		}
		for _, e := range v.Evidence {
			fmt.Fprintf(g.Stdout, "  - %s\n", e)
		}
	}
	return nil
}

func printCVE(w io.Writer, r *vulns.Record) {
	fmt.Fprintf(w, "%s  %s\n", r.ID, r.Title)
	fmt.Fprintf(w, "status:      %s (from %s)\n", r.Status, r.Source)
	if !r.FirstSeen.IsZero() {
		fmt.Fprintf(w, "first seen:  %s\n", r.FirstSeen.Format(time.RFC3339))
	}
	if r.CVSS != nil {
		fmt.Fprintf(w, "CVSS 3.1:    %.1f %s  %s\n", r.CVSS.Score, r.CVSS.Severity, r.CVSS.Vector)
		for _, s := range r.CVSS.Scenarios {
			fmt.Fprintf(w, "scenario:    %s\n", s)
		}
	} else {
		fmt.Fprintln(w, "CVSS 3.1:    not scored by the CNA")
	}
	fmt.Fprintf(w, "files:       %s\n", strings.Join(r.ProgramFiles, ", "))
	if r.MainlineFix != "" {
		fmt.Fprintf(w, "mainline fix: %s\n", r.MainlineFix)
	}
	if len(r.Branches) > 0 {
		fmt.Fprintln(w, "branches:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  INTRODUCED\tCOMMIT\tFIXED\tCOMMIT")
		for _, b := range r.Branches {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", orDash(b.IntroducedVersion), short(b.IntroducedCommit), orDash(b.FixedVersion), short(b.FixedCommit))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(r.Description))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return orDash(c)
}

// cveJSON is the JSON shape of a record on the command line.
type cveJSON struct {
	ID            string       `json:"id"`
	Status        string       `json:"status"`
	Source        string       `json:"source"`
	Title         string       `json:"title"`
	Description   string       `json:"description"`
	FirstSeen     *time.Time   `json:"first_seen,omitempty"`
	CVSS          *cvssJSON    `json:"cvss"`
	ProgramFiles  []string     `json:"program_files"`
	FixCommits    []string     `json:"fix_commits"`
	MainlineFix   string       `json:"mainline_fix,omitempty"`
	DefaultStatus string       `json:"default_status,omitempty"`
	Branches      []branchJSON `json:"branches"`
	// With --kernel:
	Verdict  *gauge.Verdict `json:"verdict,omitempty"`
	Priority *priorityJSON  `json:"priority,omitempty"`
}

type cvssJSON struct {
	Vector    string   `json:"vector"`
	Score     float64  `json:"score"`
	Severity  string   `json:"severity"`
	Scenarios []string `json:"scenarios,omitempty"`
}

type branchJSON struct {
	Branch            string `json:"branch,omitempty"`
	IntroducedVersion string `json:"introduced_version,omitempty"`
	IntroducedCommit  string `json:"introduced_commit,omitempty"`
	FixedVersion      string `json:"fixed_version,omitempty"`
	FixedCommit       string `json:"fixed_commit,omitempty"`
}

func toJSON(r *vulns.Record) cveJSON {
	out := cveJSON{
		ID: r.ID, Status: string(r.Status), Source: string(r.Source), Title: r.Title, Description: r.Description,
		ProgramFiles: nonNil(r.ProgramFiles), FixCommits: nonNil(r.FixCommits), MainlineFix: r.MainlineFix,
		DefaultStatus: r.DefaultStatus, Branches: []branchJSON{},
	}
	if !r.FirstSeen.IsZero() {
		t := r.FirstSeen
		out.FirstSeen = &t
	}
	if r.CVSS != nil {
		out.CVSS = &cvssJSON{Vector: r.CVSS.Vector, Score: r.CVSS.Score, Severity: r.CVSS.Severity, Scenarios: r.CVSS.Scenarios}
	}
	for _, b := range r.Branches {
		bj := branchJSON{IntroducedVersion: b.IntroducedVersion, IntroducedCommit: b.IntroducedCommit, FixedVersion: b.FixedVersion, FixedCommit: b.FixedCommit}
		v := b.FixedVersion
		if v == "" {
			v = b.IntroducedVersion
		}
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
