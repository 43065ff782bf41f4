package service

import (
	"context"
	"errors"
	"time"

	"github.com/tuxtape/tuxtape/internal/server/store"
)

// errLeaseLost is the cause of a held lease's context ending because
// another replica may have the lease now.
var errLeaseLost = errors.New("lost the lease")

// holdLease runs fn, which the caller starts holding the lease called
// name, with a context that renews it every ttl/3 and ends (cause
// errLeaseLost) when a renewal fails; it returns once fn has and the
// renewer stopped.
func holdLease(ctx context.Context, st store.Store, name, holder string, ttl time.Duration, fn func(ctx context.Context)) {
	hctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
			}
			now := time.Now()
			ok, err := st.AcquireLease(hctx, name, holder, now, now.Add(ttl))
			if hctx.Err() != nil {
				return
			}
			if err != nil || !ok {
				cancel(errLeaseLost)
				return
			}
		}
	}()
	fn(hctx)
	cancel(nil)
	<-renewed
}
