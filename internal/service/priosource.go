package service

import (
	"os"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/analysis/priority"
)

// prioCache keeps the prioritizer's input files loaded, per set of files,
// and reloads one when it changes on disk (a new KEV catalog or EPSS file
// dropped in place): a long-running server does not read megabytes of
// input for each query, and a one-shot command reads them once.
type prioCache struct {
	mu      sync.Mutex
	sources map[PriorityInputs]*prioritySource
}

// priorityInputs are the loaded inputs of p's files. A file that turns
// unreadable or malformed after a good load keeps the last good inputs in
// use (the log says why); one that never loaded is an error.
func (s *Service) priorityInputs(p PriorityInputs) (priority.Inputs, error) {
	if p == (PriorityInputs{}) {
		return priority.Inputs{}, nil
	}
	s.prio.mu.Lock()
	src := s.prio.sources[p]
	if src == nil {
		if s.prio.sources == nil {
			s.prio.sources = map[PriorityInputs]*prioritySource{}
		}
		src = &prioritySource{files: p}
		s.prio.sources[p] = src
	}
	s.prio.mu.Unlock()
	in, loaded, err := src.current()
	if err != nil && loaded {
		s.log.Warn("reload the prioritizer inputs; the last good ones stay in use", "err", err)
		return in, nil
	}
	return in, err
}

// CheckPriority loads p's files now, so that a server finds a bad file
// when it starts rather than on its first query.
func (s *Service) CheckPriority(p PriorityInputs) error {
	_, err := s.priorityInputs(p)
	return err
}

// prioritySource is one set of input files and what was last read of them.
type prioritySource struct {
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

// current returns the inputs, reloading a file that changed since it was
// read, and whether they were ever loaded. On an error the last good
// inputs come back with it.
func (p *prioritySource) current() (priority.Inputs, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	loaded := !p.loadedAt.IsZero()
	kev, err := stampOf(p.files.KEV)
	if err != nil {
		return p.loaded, loaded, err
	}
	epss, err := stampOf(p.files.EPSS)
	if err != nil {
		return p.loaded, loaded, err
	}
	if loaded && kev == p.kev && epss == p.epss {
		return p.loaded, true, nil
	}
	in, err := p.files.Load()
	if err != nil {
		return p.loaded, loaded, err
	}
	p.loaded, p.kev, p.epss, p.loadedAt = in, kev, epss, time.Now()
	return in, true, nil
}
