package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/frontend/termtext"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/service"
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
	Tier     string
	Text     string
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
scenario, CISA KEV, EPSS, subsystem, and for a kernel where the code is built).
--tier keeps the records whose priority is of that tier or above (critical,
high, medium, low); --text those whose ID, title, description or a program file
contains the text, in any case.`,
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
	f.StringVar(&o.Tier, "tier", "", "only records of this priority tier or above: critical, high, medium or low")
	f.StringVar(&o.Text, "text", "", "only records whose ID, title, description or a program file contains this text")
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
	d, err := parseDuration(s)
	switch {
	case errors.Is(err, errTooLong):
		return time.Time{}, usagef("--since %q: a duration can be at most %dd or 2562047h (about 292 years): give a date for earlier", s, maxDays)
	case err == nil:
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("--since %q: want a date like 2026-08-01 or a duration like 72h or 30d", s)
}

func runCVEList(ctx context.Context, g *Globals, o CVEListOptions) error {
	since, err := parseSince(o.Since, time.Now())
	if err != nil {
		return err
	}
	list, err := g.q.ListCVEs(ctx, service.CVEQuery{
		Since: since, File: o.File, MinCVSS: o.MinCVSS, Status: vulns.Status(o.Status), Limit: o.Limit,
		Kernel: o.Kernel, Affected: o.Affected, Profile: service.ProfileChoice(o.Profile), Sort: o.Sort,
		Priority: service.PriorityInputs(o.Priority), Tier: o.Tier, Text: o.Text,
	})
	if err != nil {
		return err
	}
	if list.Summary != nil && !o.JSON && !g.Quiet {
		defer fmt.Fprintf(g.Stderr, "%s: %s\n", termtext.Line(o.Kernel), termtext.Line(list.Summary.String()))
	}
	if o.JSON {
		return writeJSON(g.Stdout, list.CVEs)
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	if o.Kernel != "" {
		fmt.Fprintln(tw, "CVE\tVERDICT\tWHERE\tPRIORITY\tCVSS\tFILES\tTITLE")
	} else {
		fmt.Fprintln(tw, "CVE\tSTATUS\tPRIORITY\tCVSS\tFIRST SEEN\tFILES\tTITLE")
	}
	for i := range list.CVEs {
		r := &list.CVEs[i]
		score := "-"
		if r.CVSS != nil {
			score = strconv.FormatFloat(r.CVSS.Score, 'f', 1, 64)
		}
		seen := "-"
		if r.FirstSeen != nil {
			seen = r.FirstSeen.Format("2006-01-02")
		}
		files := strings.Join(r.ProgramFiles, ",")
		if len(r.ProgramFiles) > 1 {
			files = fmt.Sprintf("%s (+%d)", r.ProgramFiles[0], len(r.ProgramFiles)-1)
		}
		// Record fields come from the CNA's repository and from mails:
		// a cell is one line with nothing the terminal would obey.
		id, status, files, title := termtext.Line(r.ID), termtext.Line(string(r.Status)), termtext.Line(files), termtext.Line(r.Title)
		prio := "-"
		if r.Priority != nil {
			prio = fmt.Sprintf("%s %.0f", r.Priority.Tier, r.Priority.Score)
		}
		if v := r.Verdict; v != nil {
			verdict := string(v.Status)
			if v.Status != gauge.Affected {
				verdict += " (" + string(v.Reason) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, termtext.Line(verdict), termtext.Line(orDash(targetsShort(v.Where))), prio, score, files, truncate(title, 60))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, status, prio, score, seen, files, truncate(title, 70))
	}
	return tw.Flush()
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
	c, err := g.q.ShowCVE(ctx, id, service.ShowOptions{Kernel: o.Kernel, Profile: service.ProfileChoice(o.Profile), Priority: service.PriorityInputs(o.Priority)})
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(g.Stdout, c)
	}
	printCVE(g.Stdout, c)
	// Everything below is printed through termtext: it holds record text
	// from the CNA's repository or from mails.
	if p := c.Priority; p != nil {
		fmt.Fprintf(g.Stdout, "\npriority:    %s (%.0f)\n", termtext.Line(string(p.Tier)), p.Score)
		for _, why := range p.Reasons {
			fmt.Fprintf(g.Stdout, "  - %s\n", termtext.Line(why))
		}
	}
	if v := c.Verdict; v != nil {
		fmt.Fprintf(g.Stdout, "\nkernel %s: %s (%s)\n", termtext.Line(v.Kernel), termtext.Line(string(v.Status)), termtext.Line(string(v.Reason)))
		if v.TreatAsAffected {
			fmt.Fprintln(g.Stdout, "  treated as affected")
		}
		if len(v.Where) > 0 {
			fmt.Fprintf(g.Stdout, "  built into: %s\n", termtext.Line(strings.Join(v.Where, ", ")))
		}
		for _, e := range v.Evidence {
			fmt.Fprintf(g.Stdout, "  - %s\n", termtext.Line(e))
		}
	}
	return nil
}

// printCVE prints a record for people; every field goes through termtext.
func printCVE(w io.Writer, r *service.CVE) {
	l := termtext.Line
	fmt.Fprintf(w, "%s  %s\n", l(r.ID), l(r.Title))
	fmt.Fprintf(w, "status:      %s (from %s)\n", l(r.Status), l(r.Source))
	if r.FirstSeen != nil {
		fmt.Fprintf(w, "first seen:  %s\n", r.FirstSeen.Format(time.RFC3339))
	}
	if r.CVSS != nil {
		fmt.Fprintf(w, "CVSS 3.1:    %.1f %s  %s\n", r.CVSS.Score, l(r.CVSS.Severity), l(r.CVSS.Vector))
		for _, s := range r.CVSS.Scenarios {
			fmt.Fprintf(w, "scenario:    %s\n", termtext.Safe(s)) // the CNA writes one line per metric
		}
	} else {
		fmt.Fprintln(w, "CVSS 3.1:    not scored by the CNA")
	}
	fmt.Fprintf(w, "files:       %s\n", l(strings.Join(r.ProgramFiles, ", ")))
	if r.MainlineFix != "" {
		fmt.Fprintf(w, "mainline fix: %s\n", l(r.MainlineFix))
	}
	if len(r.Branches) > 0 {
		fmt.Fprintln(w, "branches:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  INTRODUCED\tCOMMIT\tFIXED\tCOMMIT")
		for _, b := range r.Branches {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l(orDash(b.IntroducedVersion)), l(short(b.IntroducedCommit)), l(orDash(b.FixedVersion)), l(short(b.FixedCommit)))
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\n%s\n", termtext.Safe(strings.TrimSpace(r.Description)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(c string) string { return orDash(vulns.ShortCommit(c)) }

// PriorityFlags are the prioritizer's optional inputs.
type PriorityFlags struct {
	KEV, EPSS string
}

func (p *PriorityFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.KEV, "kev", "", "CISA Known Exploited Vulnerabilities catalog (known_exploited_vulnerabilities.json)")
	f.StringVar(&p.EPSS, "epss", "", "FIRST EPSS scores (epss_scores-YYYY-MM-DD.csv, or .csv.gz)")
}
