package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/model/kernel"
	"github.com/tuxtape/tuxtape/internal/model/profile"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// ProfileFlag chooses the build profile the gauge uses.
type ProfileFlag string

const (
	profileAuto   ProfileFlag = ""       // real if stored, else static
	profileReal   ProfileFlag = "real"   // only the real one
	profileStatic ProfileFlag = "static" // only the static one
	profileNone   ProfileFlag = "none"   // version check only
)

func (p ProfileFlag) valid() error {
	switch p {
	case profileAuto, profileReal, profileStatic, profileNone:
		return nil
	}
	return usagef("--profile %q: want real, static or none", string(p))
}

// kernelGauge loads a kernel and the profile its verdicts use.
func (g *Globals) kernelGauge(ctx context.Context, st store.Store, name string, pf ProfileFlag) (*kernel.Kernel, *profile.Profile, *gauge.Gauge, error) {
	if err := pf.valid(); err != nil {
		return nil, nil, nil, err
	}
	k, err := st.Kernel(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil, fmt.Errorf("%w: add it with `tuxtape kernel add %s …` (see `tuxtape kernel list`)", err, name)
		}
		return nil, nil, nil, err
	}
	var p *profile.Profile
	switch pf {
	case profileNone:
	case profileReal:
		p, err = g.profile(ctx, st, k, profile.KindReal, false)
	case profileStatic:
		p, err = g.profile(ctx, st, k, profile.KindStatic, false)
	default:
		p, _, err = st.Profile(ctx, k.Name, profile.KindReal)
		if errors.Is(err, store.ErrNotFound) {
			p, err = g.profile(ctx, st, k, profile.KindStatic, false)
		}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	gg, err := gauge.ForKernel(k, p)
	if err != nil {
		return nil, nil, nil, err
	}
	return k, p, gg, nil
}

// judgeAll gives the verdicts of recs on one kernel, in recs' order.
func judgeAll(gg *gauge.Gauge, recs []vulns.Record) []gauge.Verdict {
	out := make([]gauge.Verdict, len(recs))
	for i := range recs {
		out[i] = gg.Judge(&recs[i])
	}
	return out
}
