package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/job"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func newJob(id string, kind job.Kind, at time.Time) job.Job {
	return job.Job{ID: id, Kind: kind, State: job.Queued, Kernel: "cloud", MaxAttempts: 2, Created: at, Updated: at, Spec: []byte(`{}`)}
}

func TestJobs(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			other, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()

			// Many jobs, many builders on two replicas at once: each job
			// goes to exactly one builder.
			const n = 40
			for i := range n {
				if err := st.AddJob(ctx, newJob(fmt.Sprintf("%016x", i), job.KernelBuild, now.Add(time.Duration(i)))); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			holder := map[string]string{}
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := st
					if w%2 == 1 {
						s = other
					}
					name := fmt.Sprint("builder-", w)
					for {
						j, ok, err := s.ClaimJob(ctx, name, []job.Kind{job.KernelBuild}, now, now.Add(time.Minute))
						if err != nil {
							t.Error(err)
							return
						}
						if !ok {
							return
						}
						mu.Lock()
						if prev, dup := holder[j.ID]; dup {
							t.Errorf("job %s went to %s and %s", j.ID, prev, name)
						}
						holder[j.ID] = name
						mu.Unlock()
						if j.State != job.Leased || j.Builder != name || j.Attempts != 1 {
							t.Errorf("claimed %+v", j)
						}
					}
				}()
			}
			wg.Wait()
			if len(holder) != n {
				t.Fatalf("%d of %d jobs claimed", len(holder), n)
			}
			// Nothing of another kind is handed out.
			if err := st.AddJob(ctx, newJob("00000000000000ff", job.PatchBuild, now)); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := st.ClaimJob(ctx, "b", []job.Kind{job.KernelBuild}, now, now.Add(time.Minute)); ok {
				t.Error("a kernel-build builder got a patch-build job")
			}

			// A lease that runs out goes to another builder; the first
			// one's reports are refused from then on.
			id := "0000000000000000"
			first := holder[id]
			if _, err := st.RenewJob(ctx, id, first, now.Add(30*time.Second), now.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			later := now.Add(3 * time.Minute)
			j, ok, err := st.ClaimJob(ctx, "rescuer", []job.Kind{job.KernelBuild}, later, later.Add(time.Minute))
			if err != nil || !ok || j.ID != id || j.Attempts != 2 {
				t.Fatalf("after the lease ran out: %+v, %v, %v", j, ok, err)
			}
			if _, err := st.RenewJob(ctx, id, first, later, later.Add(time.Minute)); !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("the old holder renewed: %v", err)
			}
			if _, err := st.FinishJob(ctx, id, first, true, "", nil, nil, later); !errors.Is(err, store.ErrLeaseLost) {
				t.Errorf("the old holder finished: %v", err)
			}
			// The rescuer fails on the last attempt: failed, with the error.
			if s, err := st.FinishJob(ctx, id, "rescuer", false, "make: *** [Makefile:1234] Error 2", nil, nil, later); err != nil || s != job.Failed {
				t.Errorf("last attempt failed: %v, %v", s, err)
			}
			// A failure before the last attempt queues the job again.
			id2 := "0000000000000001"
			if s, err := st.FinishJob(ctx, id2, holder[id2], false, "builder out of disk", nil, nil, now); err != nil || s != job.Queued {
				t.Errorf("first attempt failed: %v, %v", s, err)
			}
			// Done, with artifacts and a log.
			id3 := "0000000000000002"
			arts := []job.Artifact{{Name: "profile.json", SHA256: fmt.Sprintf("%064x", 7), Size: 123}}
			if err := st.AppendJobLog(ctx, id3, []string{"CC kernel/fork.o", "LD vmlinux"}, now); err != nil {
				t.Fatal(err)
			}
			if err := st.AppendJobLog(ctx, id3, []string{"done"}, now); err != nil {
				t.Fatal(err)
			}
			if s, err := st.FinishJob(ctx, id3, holder[id3], true, "", []byte(`{"units":3}`), arts, now); err != nil || s != job.Done {
				t.Errorf("done: %v, %v", s, err)
			}
			log, err := other.JobLog(ctx, id3, 1, 0)
			if err != nil || len(log) != 2 || log[0].Text != "LD vmlinux" || log[1].Seq != 3 {
				t.Errorf("log after 1: %+v, %v", log, err)
			}
			got, err := other.JobArtifacts(ctx, id3)
			if err != nil || len(got) != 1 || got[0] != arts[0] {
				t.Errorf("artifacts: %+v, %v", got, err)
			}
			// Cancel: a queued job at once; a leased one's builder learns
			// it at its next renewal; a finished one stays as it was.
			if s, _ := st.CancelJob(ctx, "00000000000000ff", now); s != job.Cancelled {
				t.Errorf("cancel queued: %v", s)
			}
			id4 := "0000000000000003"
			if s, _ := st.CancelJob(ctx, id4, now); s != job.Cancelled {
				t.Errorf("cancel leased: %v", s)
			}
			if c, err := st.RenewJob(ctx, id4, holder[id4], now, now.Add(time.Minute)); err != nil || !c {
				t.Errorf("renewing a cancelled job: %v, %v", c, err)
			}
			if s, _ := st.CancelJob(ctx, id3, now); s != job.Done {
				t.Errorf("cancel done: %v", s)
			}
			if _, err := st.Job(ctx, "ffffffffffffffff"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("unknown job: %v", err)
			}
			failed, err := st.Jobs(ctx, store.JobFilter{State: job.Failed})
			if err != nil || len(failed) != 1 || failed[0].Error == "" {
				t.Errorf("failed jobs: %+v, %v", failed, err)
			}
			// A lease that runs out on the last attempt fails the job, and
			// FailExpired says which, once.
			last := newJob("00000000000000aa", job.PatchBuild, now)
			last.MaxAttempts = 1
			if err := st.AddJob(ctx, last); err != nil {
				t.Fatal(err)
			}
			if j, ok, err := other.ClaimJob(ctx, "b", []job.Kind{job.PatchBuild}, now, now.Add(time.Minute)); err != nil || !ok || j.ID != last.ID {
				t.Fatalf("claim the one-attempt job: %+v, %v, %v", j, ok, err)
			}
			if js, err := st.FailExpired(ctx, now.Add(30*time.Second)); err != nil || len(js) != 0 {
				t.Errorf("FailExpired before the lease ran out: %+v, %v", js, err)
			}
			js, err := st.FailExpired(ctx, now.Add(2*time.Minute))
			if err != nil || len(js) != 1 || js[0].ID != last.ID || js[0].State != job.Failed || js[0].Error != store.ExpiredFailedMsg {
				t.Errorf("FailExpired: %+v, %v", js, err)
			}
			if js, _ := st.FailExpired(ctx, now.Add(3*time.Minute)); len(js) != 0 {
				t.Errorf("FailExpired twice: %+v", js)
			}
			if _, ok, _ := st.ClaimJob(ctx, "c", []job.Kind{job.PatchBuild}, now.Add(3*time.Minute), now.Add(4*time.Minute)); ok {
				t.Error("a failed job was handed out again")
			}

			// Builders register and re-register.
			bl := job.Builder{ID: "b1", Name: "builder-1", Arch: "x86_64", Cores: 2, Kernels: []string{"cloud"}, Register: now, Seen: now}
			if err := st.PutBuilder(ctx, bl); err != nil {
				t.Fatal(err)
			}
			bl.Seen, bl.Cores = now.Add(time.Hour), 4
			if err := other.PutBuilder(ctx, bl); err != nil {
				t.Fatal(err)
			}
			bs, err := st.Builders(ctx)
			if err != nil || len(bs) != 1 || bs[0].Cores != 4 || !bs[0].Register.Equal(now) {
				t.Errorf("builders: %+v, %v", bs, err)
			}
		})
	}
}
