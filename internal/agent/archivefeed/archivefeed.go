// Package archivefeed connects the agent to the signed archive
// (internal/archive/feed): it turns the feed's releases into the agent's
// and maps its errors.
package archivefeed

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/tuxtape/tuxtape/internal/agent"
	"github.com/tuxtape/tuxtape/internal/archive/feed"
)

// Feed is the archive at Options' URLs, with its cache in Options.Dir.
type Feed struct {
	Options feed.Options
}

// New makes a Feed. root is the trusted root.json's content.
func New(metadataURL, targetsURL string, root []byte, dir string, client *http.Client) *Feed {
	return &Feed{Options: feed.Options{MetadataURL: metadataURL, TargetsURL: targetsURL, Root: root, Dir: dir, HTTPClient: client}}
}

func (f *Feed) opts(offline bool) feed.Options {
	o := f.Options
	o.Offline = offline
	return o
}

// Versions lists kernel's versions, newest first; agent.ErrNoPatches when
// there are none.
func (f *Feed) Versions(ctx context.Context, kernel string, offline bool) ([]agent.Release, error) {
	rels, err := feed.Versions(ctx, f.opts(offline), kernel)
	if errors.Is(err, feed.ErrNoPatches) || (err == nil && len(rels) == 0) {
		return nil, fmt.Errorf("%s: %w", kernel, agent.ErrNoPatches)
	}
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]agent.Release, len(rels))
	for i := range rels {
		r := rels[i]
		out[i] = agent.Release{Kernel: r.Kernel, Module: r.Module, PatchSet: r.PatchSet, Version: r.Version,
			CVEs: r.CVEs, Rings: r.Rings, Replaces: r.Replaces, Handle: &r}
	}
	return out, nil
}

// Fetch returns a verified local copy of r's module.
func (f *Feed) Fetch(ctx context.Context, r agent.Release, offline bool) (string, error) {
	fr, ok := r.Handle.(*feed.Release)
	if !ok {
		return "", fmt.Errorf("fetch version %d: not a release of this archive", r.Version)
	}
	p, err := feed.Fetch(ctx, f.opts(offline), fr)
	return p, mapErr(err)
}

// mapErr keeps the feed's error and adds the agent's class.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, feed.ErrVerify):
		return fmt.Errorf("%w: %w", agent.ErrVerify, err)
	case errors.Is(err, feed.ErrNoPatches):
		return fmt.Errorf("%w: %w", agent.ErrNoPatches, err)
	}
	return err
}
