package service

import (
	"context"

	"github.com/openvex/go-vex/pkg/vex"

	"github.com/tuxtape/tuxtape/internal/analysis/gauge"
	"github.com/tuxtape/tuxtape/internal/analysis/openvex"
	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// VEXOptions shape a VEX document.
type VEXOptions struct {
	Kernel  string
	Author  string
	Profile ProfileChoice
}

// VEX judges every published CVE against a kernel and returns the
// OpenVEX document.
func (s *Service) VEX(ctx context.Context, o VEXOptions) (*vex.VEX, error) {
	if o.Kernel == "" {
		return nil, invalidf("vex needs --kernel NAME")
	}
	if err := o.Profile.Valid(); err != nil {
		return nil, err
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	k, _, gg, err := s.kernelGauge(ctx, st, o.Kernel, o.Profile)
	if err != nil {
		return nil, err
	}
	recs, err := st.CVEs(ctx, store.Filter{Status: vulns.StatusPublished})
	if err != nil {
		return nil, err
	}
	verdicts := make([]gauge.Verdict, len(recs))
	for i := range recs {
		verdicts[i] = gg.Judge(&recs[i])
	}
	return openvex.Document(k, verdicts, openvex.Options{Author: o.Author})
}
