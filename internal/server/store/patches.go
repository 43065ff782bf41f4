package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/model/patch"
)

// PatchFilter selects patches.
type PatchFilter struct {
	Kernel string
	CVE    string
	State  patch.State
}

const revisionCols = `patch_id, rev, author, created_ns, source, diff, job_id, module, vet, risk, refusal, error, refusal_code, prerequisites, exercise, fix_source`

func (d *db) AddPatch(ctx context.Context, p patch.Patch, r patch.Revision, audit authz.AuditEntry) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add patch: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO patches (id, cve, kernel, rev, state, author, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		p.ID, p.CVE, p.Kernel, p.Rev, string(p.State), p.Author, p.Created.UnixNano(), p.Updated.UnixNano()); err != nil {
		return fmt.Errorf("add patch: %w", err)
	}
	if err := d.insertRevision(ctx, tx, r); err != nil {
		return err
	}
	if err := d.addAudit(ctx, tx, audit); err != nil {
		return err
	}
	return tx.Commit()
}

func (d *db) insertRevision(ctx context.Context, tx *sql.Tx, r patch.Revision) error {
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO patch_revisions (`+revisionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.Patch, r.Rev, r.Author, r.Created.UnixNano(), r.Source, string(r.Diff), r.Job, r.Module, string(r.Vet), string(r.Risk), r.Refusal, r.Error, r.RefusalCode, string(r.Prerequisites), r.Exercise, r.FixSource); err != nil {
		return fmt.Errorf("add revision %d of patch %s: %w", r.Rev, r.Patch, err)
	}
	return nil
}

// AddRevision adds a patch's next revision (its Rev is set here) and
// makes it the patch's newest, in state building.
func (d *db) AddRevision(ctx context.Context, r patch.Revision, audit authz.AuditEntry) (int, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("add revision: %w", err)
	}
	defer tx.Rollback()
	var rev int
	err = tx.QueryRowContext(ctx, d.rebind(`SELECT rev FROM patches WHERE id = ?`+d.forUpdate), r.Patch).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("patch %s: %w", r.Patch, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("add revision: %w", err)
	}
	r.Rev = rev + 1
	if err := d.insertRevision(ctx, tx, r); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE patches SET rev = ?, state = ?, updated_ns = ? WHERE id = ?`),
		r.Rev, string(patch.Building), r.Created.UnixNano(), r.Patch); err != nil {
		return 0, fmt.Errorf("add revision: %w", err)
	}
	audit.Detail = fmt.Sprintf("revision %d", r.Rev)
	if err := d.addAudit(ctx, tx, audit); err != nil {
		return 0, err
	}
	return r.Rev, tx.Commit()
}

// RevisionOutcome is what a build-and-vet job found of a revision.
type RevisionOutcome struct {
	State       patch.State
	Job         string
	Module      string
	Vet         []byte
	Refusal     string
	RefusalCode string
	Error       string
}

// SetRevision records a revision's job or outcome; the patch takes the
// state when the revision is still its newest.
func (d *db) SetRevision(ctx context.Context, id string, rev int, o RevisionOutcome, now time.Time) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("patch %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, d.rebind(`UPDATE patch_revisions SET job_id = ?, module = ?, vet = ?, refusal = ?, error = ?, refusal_code = ? WHERE patch_id = ? AND rev = ?`),
		o.Job, o.Module, string(o.Vet), o.Refusal, o.Error, o.RefusalCode, id, rev)
	if err != nil {
		return fmt.Errorf("patch %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("patch %s revision %d: %w", id, rev, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE patches SET state = ?, updated_ns = ? WHERE id = ? AND rev = ?`), string(o.State), now.UnixNano(), id, rev); err != nil {
		return fmt.Errorf("patch %s: %w", id, err)
	}
	return tx.Commit()
}

// SetPrerequisites records what a fix source offers a revision that does
// not compile.
func (d *db) SetPrerequisites(ctx context.Context, id string, rev int, data []byte) error {
	res, err := d.sql.ExecContext(ctx, d.rebind(`UPDATE patch_revisions SET prerequisites = ? WHERE patch_id = ? AND rev = ?`), string(data), id, rev)
	if err != nil {
		return fmt.Errorf("patch %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("patch %s revision %d: %w", id, rev, ErrNotFound)
	}
	return nil
}

func scanPatch(s scanner) (patch.Patch, error) {
	var p patch.Patch
	var state string
	var created, updated int64
	err := s.Scan(&p.ID, &p.CVE, &p.Kernel, &p.Rev, &state, &p.Author, &created, &updated)
	p.State, p.Created, p.Updated = patch.State(state), time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return p, err
}

const patchCols = `id, cve, kernel, rev, state, author, created_ns, updated_ns`

func (d *db) Patches(ctx context.Context, f PatchFilter) ([]patch.Patch, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"kernel", f.Kernel}, {"cve", f.CVE}, {"state", string(f.State)}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	q := `SELECT ` + patchCols + ` FROM patches`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_ns, id`
	out := []patch.Patch{}
	err := d.each(ctx, q, args, func(s scanner) error {
		p, err := scanPatch(s)
		out = append(out, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list patches: %w", err)
	}
	return out, nil
}

func (d *db) Patch(ctx context.Context, id string) (patch.Patch, []patch.Revision, []patch.Review, error) {
	var ps []patch.Patch
	if err := d.each(ctx, `SELECT `+patchCols+` FROM patches WHERE id = ?`, []any{id}, func(s scanner) error {
		p, err := scanPatch(s)
		ps = append(ps, p)
		return err
	}); err != nil {
		return patch.Patch{}, nil, nil, fmt.Errorf("patch %s: %w", id, err)
	}
	if len(ps) == 0 {
		return patch.Patch{}, nil, nil, fmt.Errorf("patch %s: %w", id, ErrNotFound)
	}
	var revs []patch.Revision
	if err := d.each(ctx, `SELECT `+revisionCols+` FROM patch_revisions WHERE patch_id = ? ORDER BY rev`, []any{id}, func(s scanner) error {
		var r patch.Revision
		var created int64
		var diff, vet, risk, prereqs string
		if err := s.Scan(&r.Patch, &r.Rev, &r.Author, &created, &r.Source, &diff, &r.Job, &r.Module, &vet, &risk, &r.Refusal, &r.Error, &r.RefusalCode, &prereqs, &r.Exercise, &r.FixSource); err != nil {
			return err
		}
		r.Created, r.Diff, r.Vet, r.Risk, r.Prerequisites = time.Unix(0, created).UTC(), []byte(diff), rawJSON(vet), rawJSON(risk), rawJSON(prereqs)
		revs = append(revs, r)
		return nil
	}); err != nil {
		return patch.Patch{}, nil, nil, fmt.Errorf("patch %s: %w", id, err)
	}
	reviews := []patch.Review{}
	if err := d.each(ctx, `SELECT patch_id, rev, reviewer, verdict, comment, at_ns FROM patch_reviews WHERE patch_id = ? ORDER BY at_ns`, []any{id}, func(s scanner) error {
		var r patch.Review
		var verdict string
		var at int64
		if err := s.Scan(&r.Patch, &r.Rev, &r.Reviewer, &verdict, &r.Comment, &at); err != nil {
			return err
		}
		r.Verdict, r.At = patch.Verdict(verdict), time.Unix(0, at).UTC()
		reviews = append(reviews, r)
		return nil
	}); err != nil {
		return patch.Patch{}, nil, nil, fmt.Errorf("patch %s: %w", id, err)
	}
	return ps[0], revs, reviews, nil
}

// AddReview records a review, its audit entry, and (when state is not
// empty) the patch's new state, in one transaction; it refuses a review
// of a revision that is no longer the newest.
func (d *db) AddReview(ctx context.Context, r patch.Review, state patch.State, audit authz.AuditEntry) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("review: %w", err)
	}
	defer tx.Rollback()
	var rev int
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT rev FROM patches WHERE id = ?`+d.forUpdate), r.Patch).Scan(&rev); err != nil {
		return fmt.Errorf("review patch %s: %w", r.Patch, err)
	}
	if rev != r.Rev {
		return fmt.Errorf("review patch %s: revision %d is not its newest (%d): %w", r.Patch, r.Rev, rev, ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO patch_reviews (patch_id, rev, reviewer, verdict, comment, at_ns) VALUES (?, ?, ?, ?, ?, ?)`),
		r.Patch, r.Rev, r.Reviewer, string(r.Verdict), r.Comment, r.At.UnixNano()); err != nil {
		return fmt.Errorf("review: %w", err)
	}
	if state != "" {
		if _, err := tx.ExecContext(ctx, d.rebind(`UPDATE patches SET state = ?, updated_ns = ? WHERE id = ?`), string(state), r.At.UnixNano(), r.Patch); err != nil {
			return fmt.Errorf("review: %w", err)
		}
	}
	if err := d.addAudit(ctx, tx, audit); err != nil {
		return err
	}
	return tx.Commit()
}

// ErrConflict is a change made against a state that moved on.
var ErrConflict = errors.New("conflict")

const setCols = `kernel, version, state, module, sha256, job_id, cves, patches, created_ns, error`

// AddPatchSet stores a kernel's next patch set (its Version is set here,
// and its module name by name, from the version, when given).
func (d *db) AddPatchSet(ctx context.Context, s patch.Set, name func(version int) string) (patch.Set, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return patch.Set{}, fmt.Errorf("add patch set: %w", err)
	}
	defer tx.Rollback()
	if d.lockEvents != "" {
		// Two servers numbering a kernel's next set at once: one waits.
		if _, err := tx.ExecContext(ctx, `LOCK TABLE patch_sets IN EXCLUSIVE MODE`); err != nil {
			return patch.Set{}, fmt.Errorf("add patch set: %w", err)
		}
	}
	if err := tx.QueryRowContext(ctx, d.rebind(`SELECT COALESCE(MAX(version), 0) + 1 FROM patch_sets WHERE kernel = ?`), s.Kernel).Scan(&s.Version); err != nil {
		return patch.Set{}, fmt.Errorf("add patch set: %w", err)
	}
	if name != nil {
		s.Module = name(s.Version)
	}
	cves, _ := json.Marshal(s.CVEs)
	ps, _ := json.Marshal(s.Patches)
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO patch_sets (`+setCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		s.Kernel, s.Version, string(s.State), s.Module, s.SHA256, s.Job, string(cves), string(ps), s.Created.UnixNano(), s.Error); err != nil {
		return patch.Set{}, fmt.Errorf("add patch set: %w", err)
	}
	return s, tx.Commit()
}

// SetPatchSet records a patch set's job, state, module and error.
func (d *db) SetPatchSet(ctx context.Context, kernel string, version int, job string, state patch.SetState, sha, errMsg string) error {
	res, err := d.sql.ExecContext(ctx, d.rebind(`UPDATE patch_sets SET job_id = ?, state = ?, sha256 = ?, error = ? WHERE kernel = ? AND version = ?`),
		job, string(state), sha, errMsg, kernel, version)
	if err != nil {
		return fmt.Errorf("patch set %s v%d: %w", kernel, version, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("patch set %s v%d: %w", kernel, version, ErrNotFound)
	}
	return nil
}

func (d *db) PatchSets(ctx context.Context, kernel string) ([]patch.Set, error) {
	out := []patch.Set{}
	q := `SELECT ` + setCols + ` FROM patch_sets`
	var args []any
	if kernel != "" {
		q, args = q+` WHERE kernel = ?`, []any{kernel}
	}
	err := d.each(ctx, q+` ORDER BY kernel, version`, args, func(s scanner) error {
		var ps patch.Set
		var state, cves, patches string
		var created int64
		if err := s.Scan(&ps.Kernel, &ps.Version, &state, &ps.Module, &ps.SHA256, &ps.Job, &cves, &patches, &created, &ps.Error); err != nil {
			return err
		}
		ps.State, ps.Created = patch.SetState(state), time.Unix(0, created).UTC()
		if err := json.Unmarshal([]byte(cves), &ps.CVEs); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(patches), &ps.Patches); err != nil {
			return err
		}
		out = append(out, ps)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list patch sets: %w", err)
	}
	return out, nil
}

// rawJSON is a stored JSON document, nil when none was stored.
func rawJSON(s string) json.RawMessage {
	if s == "" || !json.Valid([]byte(s)) {
		return nil
	}
	return json.RawMessage(s)
}
