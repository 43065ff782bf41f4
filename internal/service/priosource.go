package service

import (
	"os"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/analysis/priority"
)

// PrioritySource keeps the prioritizer's input files loaded for a
// long-running server and reloads one when it changes on disk (a new
// KEV catalog or EPSS file dropped in place), so a query does not read
// megabytes of input each time.
type PrioritySource struct {
	files PriorityInputs

	mu       sync.Mutex
	loaded   priority.Inputs
	kev      stamp
	epss     stamp
	loadedAt time.Time
}

// stamp is what says a file changed.
type stamp struct {
	size int64
	mod  time.Time
}

func stampOf(path string) (stamp, error) {
	if path == "" {
		return stamp{}, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stamp{st.Size(), st.ModTime()}, nil
}

// NewPrioritySource loads the files once; it fails as Load does.
func NewPrioritySource(files PriorityInputs) (*PrioritySource, error) {
	p := &PrioritySource{files: files}
	if _, err := p.Current(); err != nil {
		return nil, err
	}
	return p, nil
}

// Current returns the inputs, reloading a file that changed since it was
// read. A file that turns unreadable or malformed keeps the last good
// inputs in use and returns the error with them.
func (p *PrioritySource) Current() (priority.Inputs, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	kev, kerr := stampOf(p.files.KEV)
	epss, eerr := stampOf(p.files.EPSS)
	if kerr != nil {
		return p.loaded, kerr
	}
	if eerr != nil {
		return p.loaded, eerr
	}
	if !p.loadedAt.IsZero() && kev == p.kev && epss == p.epss {
		return p.loaded, nil
	}
	in, err := p.files.Load()
	if err != nil {
		return p.loaded, err
	}
	p.loaded, p.kev, p.epss, p.loadedAt = in, kev, epss, time.Now()
	return in, nil
}
