package kbuild

import "sync"

// onceMap computes each key's value at most once, however many goroutines
// ask for it at the same time: the evaluator reads each Makefile, lists
// each directory and scans each .c file once.
type onceMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*onceEntry[V]
}

type onceEntry[V any] struct {
	once sync.Once
	v    V
	err  error
}

// get returns k's value, computing it with f the first time.
func (om *onceMap[K, V]) get(k K, f func() (V, error)) (V, error) {
	om.mu.Lock()
	if om.m == nil {
		om.m = make(map[K]*onceEntry[V])
	}
	e, ok := om.m[k]
	if !ok {
		e = &onceEntry[V]{}
		om.m[k] = e
	}
	om.mu.Unlock()
	e.once.Do(func() { e.v, e.err = f() })
	return e.v, e.err
}
