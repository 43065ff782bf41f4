package cli

import (
	"cmp"
	"slices"

	"github.com/spf13/pflag"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/analysis/priority"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// listRow is one record on its way to the output.
type listRow struct {
	rec      *vulns.Record
	verdict  *gauge.Verdict
	priority *priorityJSON
}

type priorityJSON struct {
	Score   float64  `json:"score"`
	Tier    string   `json:"tier"`
	Reasons []string `json:"reasons"`
}

// PriorityFlags are the prioritizer's optional inputs.
type PriorityFlags struct {
	KEV, EPSS string
}

func (p *PriorityFlags) add(f *pflag.FlagSet) {
	f.StringVar(&p.KEV, "kev", "", "CISA Known Exploited Vulnerabilities catalog (known_exploited_vulnerabilities.json)")
	f.StringVar(&p.EPSS, "epss", "", "FIRST EPSS scores (epss_scores-YYYY-MM-DD.csv, or .csv.gz)")
}

// score fills in each row's priority.
func (p *PriorityFlags) score(rows []listRow) error {
	var in priority.Inputs
	var err error
	if p.KEV != "" {
		if in.KEV, err = priority.ReadKEV(p.KEV); err != nil {
			return err
		}
	}
	if p.EPSS != "" {
		if in.EPSS, err = priority.ReadEPSS(p.EPSS); err != nil {
			return err
		}
	}
	for i := range rows {
		in.Placement = placement(rows[i].verdict)
		pr := priority.Score(rows[i].rec, in)
		rows[i].priority = &priorityJSON{Score: pr.Score, Tier: string(pr.Tier), Reasons: pr.Reasons}
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

// sortRows orders rows by CVE number, CNA score or priority (highest
// first); ties keep CVE order.
func sortRows(rows []listRow, by string) {
	score := func(r listRow) float64 {
		switch by {
		case "cvss":
			if r.rec.CVSS == nil {
				return -1
			}
			return r.rec.CVSS.Score
		case "priority":
			return r.priority.Score
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b listRow) int {
		return cmp.Compare(score(b), score(a))
	})
}
