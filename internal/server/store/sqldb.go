package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
)

// db implements Store over database/sql for both backends; the few
// differences live in the dialect fields.
type db struct {
	sql     *sql.DB
	backend string
	// rebind turns the ?-placeholders the queries are written with into
	// the backend's own.
	rebind func(string) string
	// lockMigrations is run first in a migration transaction to keep other
	// openers out; empty when beginning the transaction already does.
	lockMigrations string
	// lockEvents is run first in a transaction that appends events, so
	// that sequence numbers commit in order; empty when the transaction
	// is the only writer already (SQLite).
	lockEvents string
	// skipLocked ends a SELECT that picks a job to lease, so that servers
	// sharing the database never hand one job to two builders; empty
	// when the transaction is the only writer already (SQLite).
	skipLocked string
	// forUpdate ends a SELECT of a row the transaction changes next, so a
	// concurrent one waits (PostgreSQL); SQLite's writer lock does it.
	forUpdate string
}

func (d *db) Backend() string { return d.backend }
func (d *db) Close() error    { return d.sql.Close() }

func dollarRebind(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// migrate brings the schema to the current version. Several processes may
// open a fresh database at once, so each migration runs in a transaction
// that first takes the migration lock and only then reads the version:
// whoever comes second waits, then sees the migration done.
func (d *db) migrate(ctx context.Context) error {
	// Fast path, without the lock: a database that is up to date stays so,
	// and taking SQLite's write lock would make every open wait for a
	// running sync.
	var current int
	if err := d.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err == nil {
		if current > len(migrations) {
			return newerSchemaError(current)
		}
		if current == len(migrations) {
			return nil
		}
	}
	// Each step applies one migration or finds none left.
	for range len(migrations) + 1 {
		done, err := d.migrateStep(ctx)
		if err != nil || done {
			return err
		}
	}
	return errors.New("migrate: schema version did not reach the current one")
}

func newerSchemaError(v int) error {
	return fmt.Errorf("migrate: database schema version %d is newer than this tuxtape knows (%d): upgrade tuxtape", v, len(migrations))
}

// migrateStep applies the next migration, under the lock, or reports that
// there is none.
func (d *db) migrateStep(ctx context.Context) (done bool, err error) {
	// On SQLite this is BEGIN IMMEDIATE (_txlock): the write lock is the
	// migration lock, and the busy timeout makes others wait for it.
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if d.lockMigrations != "" {
		if _, err := tx.ExecContext(ctx, d.lockMigrations); err != nil {
			return false, fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return false, fmt.Errorf("migrate: read version: %w", err)
	}
	if current > len(migrations) {
		return false, newerSchemaError(current)
	}
	if current == len(migrations) {
		if err := tx.Commit(); err != nil {
			return false, fmt.Errorf("migrate: %w", err)
		}
		return true, nil
	}
	v := current + 1
	for _, stmt := range strings.Split(migrations[v-1], ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("migrate to %d: %w", v, err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), v, time.Now().Unix()); err != nil {
		return false, fmt.Errorf("migrate to %d: %w", v, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to %d: %w", v, err)
	}
	return false, nil
}

func (d *db) SyncState(ctx context.Context) (SyncState, error) {
	var s SyncState
	var at int64
	err := d.sql.QueryRowContext(ctx, `SELECT source, commit_id, synced_at FROM sync_state WHERE id = 1`).Scan(&s.Source, &s.Commit, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return SyncState{}, nil
	}
	if err != nil {
		return SyncState{}, fmt.Errorf("read sync state: %w", err)
	}
	s.SyncedAt = time.Unix(at, 0).UTC()
	return s, nil
}

// batchRows is how many rows go into one multi-row INSERT: few round trips,
// well under SQLite's and PostgreSQL's bound-parameter limits.
const batchRows = 200

// inserter accumulates rows for one multi-row INSERT statement.
type inserter struct {
	d       *db
	tx      *sql.Tx
	prefix  string // INSERT INTO t (a, b) VALUES
	suffix  string // ON CONFLICT …
	cols    int
	args    []any
	rows    int
	stmtFor map[int]*sql.Stmt
}

func (d *db) newInserter(tx *sql.Tx, prefix string, cols int, suffix string) *inserter {
	return &inserter{d: d, tx: tx, prefix: prefix, suffix: suffix, cols: cols, stmtFor: map[int]*sql.Stmt{}}
}

func (in *inserter) add(ctx context.Context, vals ...any) error {
	in.args = append(in.args, vals...)
	in.rows++
	if in.rows == batchRows {
		return in.flush(ctx)
	}
	return nil
}

func (in *inserter) flush(ctx context.Context) error {
	if in.rows == 0 {
		return nil
	}
	stmt, ok := in.stmtFor[in.rows]
	if !ok {
		var b strings.Builder
		b.WriteString(in.prefix)
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", in.cols), ",") + ")"
		for i := 0; i < in.rows; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
		}
		b.WriteString(" ")
		b.WriteString(in.suffix)
		var err error
		stmt, err = in.tx.PrepareContext(ctx, in.d.rebind(b.String()))
		if err != nil {
			return err
		}
		in.stmtFor[in.rows] = stmt
	}
	if _, err := stmt.ExecContext(ctx, in.args...); err != nil {
		return err
	}
	in.args = in.args[:0]
	in.rows = 0
	return nil
}

func (in *inserter) close() {
	for _, s := range in.stmtFor {
		s.Close()
	}
}

// deleteIDs removes the given records' rows from table.
func deleteIDs(ctx context.Context, d *db, tx *sql.Tx, table, col string, ids []string) error {
	for start := 0; start < len(ids); start += batchRows {
		end := min(start+batchRows, len(ids))
		chunk := ids[start:end]
		q := fmt.Sprintf("DELETE FROM %s WHERE %s IN (%s)", table, col, strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ","))
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, d.rebind(q), args...); err != nil {
			return fmt.Errorf("delete from %s: %w", table, err)
		}
	}
	return nil
}

func (d *db) ApplySync(ctx context.Context, b *SyncBatch) (c SyncCounts, err error) {
	c, err = d.applySync(ctx, b)
	if err != nil {
		return SyncCounts{}, err
	}
	return c, nil
}

func (d *db) applySync(ctx context.Context, b *SyncBatch) (c SyncCounts, err error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// Dates and announcement marks outlive a record's rewrite: keep them.
	type keptRow struct {
		firstSeen, announced sql.NullInt64
		source, status       string
	}
	kept := map[string]keptRow{}
	rows, err := tx.QueryContext(ctx, `SELECT id, first_seen, announced_at, source, status FROM cves`)
	if err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}
	for rows.Next() {
		var id string
		var k keptRow
		if err := rows.Scan(&id, &k.firstSeen, &k.announced, &k.source, &k.status); err != nil {
			rows.Close()
			return c, fmt.Errorf("apply sync: %w", err)
		}
		kept[id] = k
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}

	var gone []string
	if b.Full {
		if _, err := tx.ExecContext(ctx, d.rebind(`DELETE FROM cves WHERE source = ?`), string(vulns.SourceRepo)); err != nil {
			return c, fmt.Errorf("apply sync: %w", err)
		}
		for _, t := range []string{"cve_files", "cve_branches"} {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+t+" WHERE cve_id NOT IN (SELECT id FROM cves)"); err != nil {
				return c, fmt.Errorf("apply sync: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sync_problems`); err != nil {
			return c, fmt.Errorf("apply sync: %w", err)
		}
	} else {
		for _, id := range b.Deletes {
			// Only the repository's own records go with it; a record
			// known from a mail alone waits for the repository.
			if k, ok := kept[id]; ok && k.source == string(vulns.SourceRepo) {
				gone = append(gone, id)
				c.Deleted++
			}
		}
		if err := deleteIDs(ctx, d, tx, "sync_problems", "cve_id", b.ProblemIDs); err != nil {
			return c, err
		}
	}
	upserted := make(map[string]bool, len(b.Upserts))
	for _, r := range b.Upserts {
		gone = append(gone, r.ID)
		upserted[r.ID] = true
	}
	for _, t := range []string{"cves", "cve_files", "cve_branches"} {
		col := "cve_id"
		if t == "cves" {
			col = "id"
		}
		if err := deleteIDs(ctx, d, tx, t, col, gone); err != nil {
			return c, err
		}
	}

	err = d.insertRecords(ctx, tx, b.Upserts, func(r *vulns.Record) (sql.NullInt64, sql.NullInt64) {
		firstSeen := nullTime(r.FirstSeen)
		announced := sql.NullInt64{}
		if k, ok := kept[r.ID]; ok {
			// A sync only dates the records it saw added; the others keep
			// the date the repository first had them.
			if k.source == string(vulns.SourceRepo) && k.firstSeen.Valid && (!firstSeen.Valid || !b.Full) {
				firstSeen = k.firstSeen
			}
			announced = k.announced
			if k.source == string(vulns.SourceRepo) {
				c.Updated++
			} else {
				c.Added++
			}
			if r.Status == vulns.StatusRejected && k.status != string(vulns.StatusRejected) {
				c.Rejected++
			}
		} else {
			c.Added++
			if r.Status == vulns.StatusRejected {
				c.Rejected++
			}
		}
		return firstSeen, announced
	})
	if err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}
	probs := d.newInserter(tx, `INSERT INTO sync_problems (cve_id, file, reason) VALUES `, 3, "")
	defer probs.close()
	seen := map[[2]string]bool{}
	for _, p := range b.Problems {
		k := [2]string{p.ID, p.File}
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := probs.add(ctx, p.ID, p.File, p.Reason); err != nil {
			return c, fmt.Errorf("apply sync: %w", err)
		}
	}
	if err := probs.flush(ctx); err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM sync_state`); err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}
	if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO sync_state (id, source, commit_id, synced_at) VALUES (1, ?, ?, ?)`),
		b.State.Source, b.State.Commit, b.State.SyncedAt.Unix()); err != nil {
		return c, fmt.Errorf("apply sync: %w", err)
	}
	if b.Full {
		for id, k := range kept {
			if k.source == string(vulns.SourceRepo) && !upserted[id] {
				c.Deleted++
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return c, fmt.Errorf("apply sync: commit: %w", err)
	}
	return c, nil
}

// insertRecords writes records, their files and their branches; dates
// gives each record's first_seen and announced_at.
func (d *db) insertRecords(ctx context.Context, tx *sql.Tx, recs []vulns.Record, dates func(*vulns.Record) (sql.NullInt64, sql.NullInt64)) error {
	cves := d.newInserter(tx, `INSERT INTO cves (id, year, num, status, source, title, description, default_status,
		cvss_vector, cvss_score, cvss_severity, cvss_scenarios, fix_commits, mainline_fix, ranges, first_seen, announced_at) VALUES `, 17, "")
	defer cves.close()
	files := d.newInserter(tx, `INSERT INTO cve_files (cve_id, seq, path) VALUES `, 3, "")
	defer files.close()
	branches := d.newInserter(tx, `INSERT INTO cve_branches (cve_id, seq, introduced_version, introduced_commit, fixed_version, fixed_commit) VALUES `, 6, "")
	defer branches.close()
	for i := range recs {
		r := &recs[i]
		year, num, _ := vulns.SplitID(r.ID)
		var vec, sev, scen sql.NullString
		var score sql.NullFloat64
		if r.CVSS != nil {
			vec = sql.NullString{String: r.CVSS.Vector, Valid: true}
			sev = sql.NullString{String: r.CVSS.Severity, Valid: true}
			score = sql.NullFloat64{Float64: r.CVSS.Score, Valid: true}
			scen = sql.NullString{String: mustJSON(r.CVSS.Scenarios), Valid: true}
		}
		firstSeen, announced := dates(r)
		if err := cves.add(ctx, r.ID, year, num, string(r.Status), string(r.Source), r.Title, r.Description, r.DefaultStatus,
			vec, score, sev, scen, mustJSON(r.FixCommits), r.MainlineFix, mustJSON(r.Ranges), firstSeen, announced); err != nil {
			return fmt.Errorf("store %s: %w", r.ID, err)
		}
		for j, f := range r.ProgramFiles {
			if err := files.add(ctx, r.ID, j, f); err != nil {
				return fmt.Errorf("store %s: %w", r.ID, err)
			}
		}
		for j, br := range r.Branches {
			if err := branches.add(ctx, r.ID, j, br.IntroducedVersion, br.IntroducedCommit, br.FixedVersion, br.FixedCommit); err != nil {
				return fmt.Errorf("store %s: %w", r.ID, err)
			}
		}
	}
	for _, in := range []*inserter{cves, files, branches} {
		if err := in.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *db) ApplyAnnouncements(ctx context.Context, recs []vulns.Record) (c AnnounceCounts, err error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return c, fmt.Errorf("apply announcements: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// A mailbox can hold a CVE twice (announcement, then its rejection):
	// the later message wins.
	last := map[string]int{}
	for i, r := range recs {
		last[r.ID] = i
	}
	var upserts []vulns.Record
	for i, r := range recs {
		if last[r.ID] != i {
			continue
		}
		var source string
		err := tx.QueryRowContext(ctx, d.rebind(`SELECT source FROM cves WHERE id = ?`), r.ID).Scan(&source)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			c.Added++
		case err != nil:
			return c, fmt.Errorf("apply announcements: %w", err)
		case source == string(vulns.SourceRepo):
			c.Known++ // the repository is the truth
			continue
		default:
			c.Updated++
		}
		upserts = append(upserts, r)
	}
	var ids []string
	for i := range upserts {
		upserts[i].Source = vulns.SourceAnnounce
		ids = append(ids, upserts[i].ID)
	}
	if err := deleteIDs(ctx, d, tx, "cves", "id", ids); err != nil {
		return c, err
	}
	for _, t := range []string{"cve_files", "cve_branches"} {
		if err := deleteIDs(ctx, d, tx, t, "cve_id", ids); err != nil {
			return c, err
		}
	}
	if err := d.insertRecords(ctx, tx, upserts, func(r *vulns.Record) (sql.NullInt64, sql.NullInt64) {
		seen := nullTime(r.FirstSeen)
		return seen, seen
	}); err != nil {
		return c, fmt.Errorf("apply announcements: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return c, fmt.Errorf("apply announcements: commit: %w", err)
	}
	return c, nil
}

const cveColumns = `id, status, source, title, description, default_status, cvss_vector, cvss_score, cvss_severity,
	cvss_scenarios, fix_commits, mainline_fix, ranges, first_seen, announced_at`

func (d *db) CVE(ctx context.Context, id string) (vulns.Record, error) {
	recs, err := d.query(ctx, `SELECT `+cveColumns+` FROM cves WHERE id = ?`, []any{id}, id)
	if err != nil {
		return vulns.Record{}, err
	}
	if len(recs) == 0 {
		return vulns.Record{}, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	return recs[0], nil
}

func (d *db) CVEs(ctx context.Context, f Filter) ([]vulns.Record, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where = append(where, "first_seen >= ?")
		args = append(args, f.Since.Unix())
	}
	if f.MinCVSS > 0 {
		where = append(where, "cvss_score >= ?")
		args = append(args, f.MinCVSS)
	}
	if f.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(f.Status))
	}
	if f.File != "" {
		dir := strings.TrimSuffix(f.File, "/") + "/"
		where = append(where, "id IN (SELECT cve_id FROM cve_files WHERE path = ? OR substr(path, 1, ?) = ?)")
		args = append(args, f.File, len(dir), dir)
	}
	q := `SELECT ` + cveColumns + ` FROM cves`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY year, num"
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	return d.query(ctx, q, args, "")
}

// query reads records and their files and branches; one is the single ID
// asked for, or "" for a list (then child rows are read in one pass).
func (d *db) query(ctx context.Context, q string, args []any, one string) ([]vulns.Record, error) {
	rows, err := d.sql.QueryContext(ctx, d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("query cves: %w", err)
	}
	defer rows.Close()
	var recs []vulns.Record
	index := map[string]int{}
	for rows.Next() {
		var r vulns.Record
		var status, source string
		var vec, sev, scen sql.NullString
		var score sql.NullFloat64
		var fixes, ranges string
		var firstSeen, announced sql.NullInt64
		if err := rows.Scan(&r.ID, &status, &source, &r.Title, &r.Description, &r.DefaultStatus, &vec, &score, &sev,
			&scen, &fixes, &r.MainlineFix, &ranges, &firstSeen, &announced); err != nil {
			return nil, fmt.Errorf("query cves: %w", err)
		}
		r.Status, r.Source = vulns.Status(status), vulns.Source(source)
		if vec.Valid {
			r.CVSS = &vulns.CVSS{Vector: vec.String, Score: score.Float64, Severity: sev.String}
			if err := json.Unmarshal([]byte(scen.String), &r.CVSS.Scenarios); err != nil {
				return nil, fmt.Errorf("query cves: %s: scenarios: %w", r.ID, err)
			}
		}
		if err := json.Unmarshal([]byte(fixes), &r.FixCommits); err != nil {
			return nil, fmt.Errorf("query cves: %s: fix commits: %w", r.ID, err)
		}
		if err := json.Unmarshal([]byte(ranges), &r.Ranges); err != nil {
			return nil, fmt.Errorf("query cves: %s: ranges: %w", r.ID, err)
		}
		if firstSeen.Valid {
			r.FirstSeen = time.Unix(firstSeen.Int64, 0).UTC()
		}
		index[r.ID] = len(recs)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query cves: %w", err)
	}
	if len(recs) == 0 {
		return recs, nil
	}
	fq := `SELECT cve_id, path FROM cve_files ORDER BY cve_id, seq`
	bq := `SELECT cve_id, introduced_version, introduced_commit, fixed_version, fixed_commit FROM cve_branches ORDER BY cve_id, seq`
	var cargs []any
	if one != "" {
		fq = `SELECT cve_id, path FROM cve_files WHERE cve_id = ? ORDER BY seq`
		bq = `SELECT cve_id, introduced_version, introduced_commit, fixed_version, fixed_commit FROM cve_branches WHERE cve_id = ? ORDER BY seq`
		cargs = []any{one}
	}
	if err := d.each(ctx, fq, cargs, func(s scanner) error {
		var id, path string
		if err := s.Scan(&id, &path); err != nil {
			return err
		}
		if i, ok := index[id]; ok {
			recs[i].ProgramFiles = append(recs[i].ProgramFiles, path)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := d.each(ctx, bq, cargs, func(s scanner) error {
		var id string
		var b vulns.Branch
		if err := s.Scan(&id, &b.IntroducedVersion, &b.IntroducedCommit, &b.FixedVersion, &b.FixedCommit); err != nil {
			return err
		}
		if i, ok := index[id]; ok {
			recs[i].Branches = append(recs[i].Branches, b)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return recs, nil
}

type scanner interface{ Scan(dest ...any) error }

func (d *db) each(ctx context.Context, q string, args []any, fn func(scanner) error) error {
	rows, err := d.sql.QueryContext(ctx, d.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("query: %w", err)
		}
	}
	return rows.Err()
}

func (d *db) Problems(ctx context.Context) ([]Problem, error) {
	var ps []Problem
	err := d.each(ctx, `SELECT cve_id, file, reason FROM sync_problems ORDER BY cve_id, file`, nil, func(s scanner) error {
		var p Problem
		if err := s.Scan(&p.ID, &p.File, &p.Reason); err != nil {
			return err
		}
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain strings and structs of strings are marshalled here.
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return string(b)
}
