package store

// migrations are applied in order; each runs in its own transaction and is
// written in the SQL that SQLite and PostgreSQL both accept.
var migrations = []string{
	// 1: CVE records and sync state.
	`CREATE TABLE cves (
		id             TEXT PRIMARY KEY,
		year           INTEGER NOT NULL,
		num            BIGINT NOT NULL,
		status         TEXT NOT NULL,
		source         TEXT NOT NULL,
		title          TEXT NOT NULL,
		description    TEXT NOT NULL,
		default_status TEXT NOT NULL,
		cvss_vector    TEXT,
		cvss_score     DOUBLE PRECISION,
		cvss_severity  TEXT,
		cvss_scenarios TEXT,
		fix_commits    TEXT NOT NULL,
		mainline_fix   TEXT NOT NULL,
		ranges         TEXT NOT NULL,
		first_seen     BIGINT,
		announced_at   BIGINT
	);
	CREATE INDEX cves_order ON cves (year, num);
	CREATE INDEX cves_first_seen ON cves (first_seen);
	CREATE TABLE cve_files (
		cve_id TEXT NOT NULL,
		seq    INTEGER NOT NULL,
		path   TEXT NOT NULL,
		PRIMARY KEY (cve_id, seq)
	);
	CREATE INDEX cve_files_path ON cve_files (path);
	CREATE TABLE cve_branches (
		cve_id             TEXT NOT NULL,
		seq                INTEGER NOT NULL,
		introduced_version TEXT NOT NULL,
		introduced_commit  TEXT NOT NULL,
		fixed_version      TEXT NOT NULL,
		fixed_commit       TEXT NOT NULL,
		PRIMARY KEY (cve_id, seq)
	);
	CREATE TABLE sync_state (
		id        INTEGER PRIMARY KEY CHECK (id = 1),
		source    TEXT NOT NULL,
		commit_id TEXT NOT NULL,
		synced_at BIGINT NOT NULL
	);
	CREATE TABLE sync_problems (
		cve_id TEXT NOT NULL,
		file   TEXT NOT NULL,
		reason TEXT NOT NULL,
		PRIMARY KEY (cve_id, file)
	);`, // 2: kernels and their build profiles.
	`CREATE TABLE kernels (
		name       TEXT PRIMARY KEY,
		release    TEXT NOT NULL,
		version    TEXT NOT NULL,
		record     TEXT NOT NULL,
		config     BYTEA NOT NULL,
		added_at   BIGINT NOT NULL
	);
	CREATE TABLE kernel_profiles (
		kernel     TEXT NOT NULL,
		kind       TEXT NOT NULL,
		data       BYTEA NOT NULL,
		made_at    BIGINT NOT NULL,
		PRIMARY KEY (kernel, kind)
	);`,
	// 3: server tokens and the audit log.
	`CREATE TABLE tokens (
		id         TEXT PRIMARY KEY,
		role       TEXT NOT NULL,
		machine    TEXT NOT NULL,
		hash       BYTEA NOT NULL,
		created_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL,
		revoked_at BIGINT NOT NULL
	);
	CREATE TABLE audit (
		at_ns  BIGINT NOT NULL,
		actor  TEXT NOT NULL,
		action TEXT NOT NULL,
		target TEXT NOT NULL,
		origin TEXT NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE INDEX audit_at ON audit (at_ns);`,
	// 4: the fleet: each machine's last heartbeat, and its events.
	`CREATE TABLE machines (
		id            TEXT PRIMARY KEY,
		hostname      TEXT NOT NULL,
		kernel        TEXT NOT NULL,
		agent_version TEXT NOT NULL,
		ring          TEXT NOT NULL,
		state         TEXT NOT NULL,
		last_seen_ns  BIGINT NOT NULL,
		level         TEXT NOT NULL,
		patches       TEXT NOT NULL,
		cves          TEXT NOT NULL
	);
	CREATE INDEX machines_kernel ON machines (kernel, id);
	CREATE TABLE machine_events (
		machine_id TEXT NOT NULL,
		at_ns      BIGINT NOT NULL,
		kind       TEXT NOT NULL,
		patch      TEXT NOT NULL,
		detail     TEXT NOT NULL,
		log        TEXT NOT NULL
	);
	CREATE INDEX machine_events_at ON machine_events (machine_id, at_ns);`,
	// 5: the event stream, and leases (one replica at a time runs a
	// periodic job). Sequence numbers are assigned under a table lock, not
	// by a sequence, so that they commit in order: a follower never sees
	// seq n+1 before seq n.
	`CREATE TABLE events (
		seq     BIGINT PRIMARY KEY,
		at_ns   BIGINT NOT NULL,
		kind    TEXT NOT NULL,
		subject TEXT NOT NULL,
		actor   TEXT NOT NULL,
		detail  TEXT NOT NULL
	);
	CREATE TABLE leases (
		name       TEXT PRIMARY KEY,
		holder     TEXT NOT NULL,
		expires_ns BIGINT NOT NULL
	);`,
	// 6: revoked tokens, found fast: servers poll for revocations so that
	// they can trust a token they authenticated for long.
	`CREATE INDEX tokens_revoked ON tokens (revoked_at);`,
	// 7: builders and their jobs, with logs and artifacts.
	`CREATE TABLE builders (
		id            TEXT PRIMARY KEY,
		name          TEXT NOT NULL,
		arch          TEXT NOT NULL,
		cores         INTEGER NOT NULL,
		kernels       TEXT NOT NULL,
		registered_ns BIGINT NOT NULL,
		seen_ns       BIGINT NOT NULL
	);
	CREATE TABLE jobs (
		id           TEXT PRIMARY KEY,
		kind         TEXT NOT NULL,
		state        TEXT NOT NULL,
		kernel       TEXT NOT NULL,
		attempts     INTEGER NOT NULL,
		max_attempts INTEGER NOT NULL,
		builder      TEXT NOT NULL,
		lease_ns     BIGINT NOT NULL,
		created_ns   BIGINT NOT NULL,
		updated_ns   BIGINT NOT NULL,
		by_actor     TEXT NOT NULL,
		error        TEXT NOT NULL,
		spec         TEXT NOT NULL,
		result       TEXT NOT NULL
	);
	CREATE INDEX jobs_queue ON jobs (state, created_ns);
	CREATE TABLE job_logs (
		job_id TEXT NOT NULL,
		seq    BIGINT NOT NULL,
		at_ns  BIGINT NOT NULL,
		text   TEXT NOT NULL,
		PRIMARY KEY (job_id, seq)
	);
	CREATE TABLE job_artifacts (
		job_id TEXT NOT NULL,
		name   TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		size   BIGINT NOT NULL,
		PRIMARY KEY (job_id, name)
	);`,
	// 8: deployable patches, their revisions and reviews, and patch sets.
	`CREATE TABLE patches (
		id         TEXT PRIMARY KEY,
		cve        TEXT NOT NULL,
		kernel     TEXT NOT NULL,
		rev        INTEGER NOT NULL,
		state      TEXT NOT NULL,
		author     TEXT NOT NULL,
		created_ns BIGINT NOT NULL,
		updated_ns BIGINT NOT NULL
	);
	CREATE INDEX patches_kernel ON patches (kernel, cve);
	CREATE TABLE patch_revisions (
		patch_id   TEXT NOT NULL,
		rev        INTEGER NOT NULL,
		author     TEXT NOT NULL,
		created_ns BIGINT NOT NULL,
		source     TEXT NOT NULL,
		diff       TEXT NOT NULL,
		job_id     TEXT NOT NULL,
		module     TEXT NOT NULL,
		vet        TEXT NOT NULL,
		risk       TEXT NOT NULL,
		refusal    TEXT NOT NULL,
		error      TEXT NOT NULL,
		PRIMARY KEY (patch_id, rev)
	);
	CREATE TABLE patch_reviews (
		patch_id TEXT NOT NULL,
		rev      INTEGER NOT NULL,
		reviewer TEXT NOT NULL,
		verdict  TEXT NOT NULL,
		comment  TEXT NOT NULL,
		at_ns    BIGINT NOT NULL
	);
	CREATE INDEX patch_reviews_patch ON patch_reviews (patch_id, rev);
	CREATE TABLE patch_sets (
		kernel     TEXT NOT NULL,
		version    INTEGER NOT NULL,
		state      TEXT NOT NULL,
		module     TEXT NOT NULL,
		sha256     TEXT NOT NULL,
		job_id     TEXT NOT NULL,
		cves       TEXT NOT NULL,
		patches    TEXT NOT NULL,
		created_ns BIGINT NOT NULL,
		error      TEXT NOT NULL,
		PRIMARY KEY (kernel, version)
	);`,
	// 9: a patch's health across the fleet is read by its name.
	`CREATE INDEX machine_events_patch ON machine_events (patch, kind);`,
	// 10: the webhook dispatcher: where it is in the event stream, its
	// deliveries, and the CVEs it has told about per kernel.
	`CREATE TABLE cursors (
		name TEXT PRIMARY KEY,
		seq  BIGINT NOT NULL
	);
	CREATE TABLE webhook_deliveries (
		id         TEXT PRIMARY KEY,
		event_id   TEXT NOT NULL,
		kind       TEXT NOT NULL,
		url        TEXT NOT NULL,
		state      TEXT NOT NULL,
		attempts   TEXT NOT NULL,
		updated_ns BIGINT NOT NULL
	);
	CREATE TABLE notified_cves (
		kernel TEXT NOT NULL,
		cve    TEXT NOT NULL,
		PRIMARY KEY (kernel, cve)
	);`,
	// 11: a refused revision's code, apart from its reason.
	`ALTER TABLE patch_revisions ADD COLUMN refusal_code TEXT NOT NULL DEFAULT '';`,
	// 12: what a fix source offers a revision that does not compile, the
	// fix source a revision came from, and a revision's vetting exercise.
	`ALTER TABLE patch_revisions ADD COLUMN prerequisites TEXT NOT NULL DEFAULT '';
	ALTER TABLE patch_revisions ADD COLUMN exercise TEXT NOT NULL DEFAULT '';
	ALTER TABLE patch_revisions ADD COLUMN fix_source TEXT NOT NULL DEFAULT '';`,
}
