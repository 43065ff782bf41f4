package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/job"
)

// ErrLeaseLost is returned to a builder that reports on a job it no
// longer holds: its lease ran out and the job went to another, or it was
// cancelled or finished.
var ErrLeaseLost = errors.New("the job's lease is not this builder's")

// JobFilter selects jobs for Jobs.
type JobFilter struct {
	State  job.State // "": any
	Kernel string
	Limit  int // 0: all
}

const jobCols = `id, kind, state, kernel, attempts, max_attempts, builder, lease_ns, created_ns, updated_ns, by_actor, error, spec, result`

func (d *db) AddJob(ctx context.Context, j job.Job) error {
	_, err := d.sql.ExecContext(ctx, d.rebind(`INSERT INTO jobs (`+jobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		j.ID, string(j.Kind), string(j.State), j.Kernel, j.Attempts, j.MaxAttempts, j.Builder, unixNanoOrZero(j.LeaseUntil),
		j.Created.UnixNano(), j.Updated.UnixNano(), j.By, j.Error, string(j.Spec), string(j.Result))
	if err != nil {
		return fmt.Errorf("add job: %w", err)
	}
	return nil
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func scanJob(s scanner) (job.Job, error) {
	var j job.Job
	var kind, state, spec, result string
	var lease, created, updated int64
	if err := s.Scan(&j.ID, &kind, &state, &j.Kernel, &j.Attempts, &j.MaxAttempts, &j.Builder, &lease, &created, &updated, &j.By, &j.Error, &spec, &result); err != nil {
		return j, err
	}
	j.Kind, j.State = job.Kind(kind), job.State(state)
	if lease != 0 {
		j.LeaseUntil = time.Unix(0, lease).UTC()
	}
	j.Created, j.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	j.Spec, j.Result = []byte(spec), []byte(result)
	return j, nil
}

func (d *db) Job(ctx context.Context, id string) (job.Job, error) {
	var out []job.Job
	err := d.each(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, []any{id}, func(s scanner) error {
		j, err := scanJob(s)
		out = append(out, j)
		return err
	})
	if err != nil {
		return job.Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	if len(out) == 0 {
		return job.Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return out[0], nil
}

func (d *db) Jobs(ctx context.Context, f JobFilter) ([]job.Job, error) {
	var where []string
	var args []any
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if f.Kernel != "" {
		where, args = append(where, "kernel = ?"), append(args, f.Kernel)
	}
	q := `SELECT ` + jobCols + ` FROM jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_ns DESC, id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	out := []job.Job{}
	err := d.each(ctx, q, args, func(s scanner) error {
		j, err := scanJob(s)
		out = append(out, j)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out, nil
}

// ExpiredFailedMsg is the error of a job whose builder stopped reporting
// on its last attempt.
const ExpiredFailedMsg = "the builder stopped reporting on its last attempt (lease expired)"

// FailExpired fails the jobs whose lease ran out on their last attempt,
// and returns them.
func (d *db) FailExpired(ctx context.Context, now time.Time) ([]job.Job, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("fail expired jobs: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, d.rebind(`SELECT `+jobCols+` FROM jobs WHERE state = ? AND lease_ns < ? AND attempts >= max_attempts`+d.forUpdate),
		string(job.Leased), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("fail expired jobs: %w", err)
	}
	var out []job.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("fail expired jobs: %w", err)
		}
		out = append(out, j)
	}
	rows.Close()
	for i := range out {
		if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE jobs SET state = ?, error = ?, updated_ns = ? WHERE id = ?`),
			string(job.Failed), ExpiredFailedMsg, now.UnixNano(), out[i].ID); err != nil {
			return nil, fmt.Errorf("fail expired job %s: %w", out[i].ID, err)
		}
		out[i].State, out[i].Error = job.Failed, ExpiredFailedMsg
	}
	return out, tx.Commit()
}

// ClaimJob leases the oldest job of kinds that is queued, or whose lease
// ran out with attempts left, to builder until until. It reports false
// when there is none.
func (d *db) ClaimJob(ctx context.Context, builder string, kinds []job.Kind, now, until time.Time) (job.Job, bool, error) {
	if len(kinds) == 0 {
		return job.Job{}, false, nil
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return job.Job{}, false, fmt.Errorf("claim a job: %w", err)
	}
	defer tx.Rollback()
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(kinds)), ", ")
	args := []any{string(job.Queued), string(job.Leased), now.UnixNano()}
	for _, k := range kinds {
		args = append(args, string(k))
	}
	var id string
	err = tx.QueryRowContext(ctx, d.rebind(`SELECT id FROM jobs WHERE (state = ? OR (state = ? AND lease_ns < ? AND attempts < max_attempts)) AND kind IN (`+marks+`)
		ORDER BY created_ns, id LIMIT 1`+d.skipLocked), args...).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return job.Job{}, false, tx.Commit()
	}
	if err != nil {
		return job.Job{}, false, fmt.Errorf("claim a job: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE jobs SET state = ?, builder = ?, lease_ns = ?, attempts = attempts + 1, updated_ns = ? WHERE id = ?`),
		string(job.Leased), builder, until.UnixNano(), now.UnixNano(), id); err != nil {
		return job.Job{}, false, fmt.Errorf("claim job %s: %w", id, err)
	}
	j, err := scanJob(tx.QueryRowContext(ctx, d.rebind(`SELECT `+jobCols+` FROM jobs WHERE id = ?`), id))
	if err != nil {
		return job.Job{}, false, fmt.Errorf("claim job %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return job.Job{}, false, fmt.Errorf("claim job %s: %w", id, err)
	}
	return j, true, nil
}

// RenewJob extends builder's lease on a job; it says whether the job was
// cancelled meanwhile (the builder then stops), or ErrLeaseLost.
func (d *db) RenewJob(ctx context.Context, id, builder string, now, until time.Time) (cancelled bool, err error) {
	res, err := d.sql.ExecContext(ctx, d.rebind(`UPDATE jobs SET lease_ns = ?, updated_ns = ? WHERE id = ? AND builder = ? AND state = ? AND lease_ns >= ?`),
		until.UnixNano(), now.UnixNano(), id, builder, string(job.Leased), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("renew job %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return false, nil
	}
	j, err := d.Job(ctx, id)
	if err != nil {
		return false, err
	}
	if j.State == job.Cancelled && j.Builder == builder {
		return true, nil
	}
	return false, fmt.Errorf("renew job %s: %w (it is %s, held by %q)", id, ErrLeaseLost, j.State, j.Builder)
}

// FinishJob records a leased job's end: done with its result and
// artifacts, or failed. A failure before the last attempt puts the job
// back in the queue.
func (d *db) FinishJob(ctx context.Context, id, builder string, ok bool, errMsg string, result []byte, arts []job.Artifact, now time.Time) (job.State, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("finish job %s: %w", id, err)
	}
	defer tx.Rollback()
	var attempts, max int
	var state, holder string
	err = tx.QueryRowContext(ctx, d.rebind(`SELECT state, builder, attempts, max_attempts FROM jobs WHERE id = ?`), id).Scan(&state, &holder, &attempts, &max)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("finish job %s: %w", id, err)
	}
	if state != string(job.Leased) || holder != builder {
		return "", fmt.Errorf("finish job %s: %w (it is %s, held by %q)", id, ErrLeaseLost, state, holder)
	}
	next := job.Done
	switch {
	case !ok && attempts < max:
		next = job.Queued
	case !ok:
		next = job.Failed
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE jobs SET state = ?, error = ?, result = ?, updated_ns = ?, lease_ns = 0 WHERE id = ?`),
		string(next), errMsg, string(result), now.UnixNano(), id); err != nil {
		return "", fmt.Errorf("finish job %s: %w", id, err)
	}
	for _, a := range arts {
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO job_artifacts (job_id, name, sha256, size) VALUES (?, ?, ?, ?)`), id, a.Name, a.SHA256, a.Size); err != nil {
			return "", fmt.Errorf("finish job %s: artifact %s: %w", id, a.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("finish job %s: %w", id, err)
	}
	return next, nil
}

// CancelJob stops a job that is not over; a leased one's builder learns
// it at its next renewal.
func (d *db) CancelJob(ctx context.Context, id string, now time.Time) (job.State, error) {
	res, err := d.sql.ExecContext(ctx, d.rebind(`UPDATE jobs SET state = ?, updated_ns = ? WHERE id = ? AND state IN (?, ?)`),
		string(job.Cancelled), now.UnixNano(), id, string(job.Queued), string(job.Leased))
	if err != nil {
		return "", fmt.Errorf("cancel job %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return job.Cancelled, nil
	}
	j, err := d.Job(ctx, id)
	if err != nil {
		return "", err
	}
	return j.State, nil
}

// JobLogLine is one line of a job's log.
type JobLogLine struct {
	Seq  int64
	At   time.Time
	Text string
}

func (d *db) AppendJobLog(ctx context.Context, id string, lines []string, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("job %s log: %w", id, err)
	}
	defer tx.Rollback()
	var last int64
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COALESCE(MAX(seq), 0) FROM job_logs WHERE job_id = ?`), id).Scan(&last); err != nil {
		return fmt.Errorf("job %s log: %w", id, err)
	}
	in := d.newInserter(tx, `INSERT INTO job_logs (job_id, seq, at_ns, text) VALUES `, 4, "")
	defer in.close()
	for i, l := range lines {
		if err := in.add(ctx, id, last+int64(i)+1, now.UnixNano(), l); err != nil {
			return fmt.Errorf("job %s log: %w", id, err)
		}
	}
	if err := in.flush(ctx); err != nil {
		return fmt.Errorf("job %s log: %w", id, err)
	}
	return tx.Commit()
}

func (d *db) JobLog(ctx context.Context, id string, after int64, limit int) ([]JobLogLine, error) {
	q := `SELECT seq, at_ns, text FROM job_logs WHERE job_id = ? AND seq > ? ORDER BY seq`
	args := []any{id, after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var out []JobLogLine
	err := d.each(ctx, q, args, func(s scanner) error {
		var l JobLogLine
		var at int64
		if err := s.Scan(&l.Seq, &at, &l.Text); err != nil {
			return err
		}
		l.At = time.Unix(0, at).UTC()
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("job %s log: %w", id, err)
	}
	return out, nil
}

func (d *db) JobArtifacts(ctx context.Context, id string) ([]job.Artifact, error) {
	out := []job.Artifact{}
	err := d.each(ctx, `SELECT name, sha256, size FROM job_artifacts WHERE job_id = ? ORDER BY name`, []any{id}, func(s scanner) error {
		var a job.Artifact
		if err := s.Scan(&a.Name, &a.SHA256, &a.Size); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("job %s artifacts: %w", id, err)
	}
	return out, nil
}

func (d *db) PutBuilder(ctx context.Context, b job.Builder) error {
	kernels, err := json.Marshal(b.Kernels)
	if err != nil {
		return fmt.Errorf("register builder: %w", err)
	}
	_, err = d.sql.ExecContext(ctx, d.rebind(`INSERT INTO builders (id, name, arch, cores, kernels, registered_ns, seen_ns) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, arch = excluded.arch, cores = excluded.cores, kernels = excluded.kernels, seen_ns = excluded.seen_ns`),
		b.ID, b.Name, b.Arch, b.Cores, string(kernels), b.Register.UnixNano(), b.Seen.UnixNano())
	if err != nil {
		return fmt.Errorf("register builder %s: %w", b.Name, err)
	}
	return nil
}

func (d *db) Builders(ctx context.Context) ([]job.Builder, error) {
	out := []job.Builder{}
	err := d.each(ctx, `SELECT id, name, arch, cores, kernels, registered_ns, seen_ns FROM builders ORDER BY name, id`, nil, func(s scanner) error {
		var b job.Builder
		var kernels string
		var reg, seen int64
		if err := s.Scan(&b.ID, &b.Name, &b.Arch, &b.Cores, &kernels, &reg, &seen); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(kernels), &b.Kernels); err != nil {
			return err
		}
		b.Register, b.Seen = time.Unix(0, reg).UTC(), time.Unix(0, seen).UTC()
		out = append(out, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list builders: %w", err)
	}
	return out, nil
}
