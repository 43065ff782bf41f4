package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/vulns"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func rec(id string, status vulns.Status, score float64, files ...string) vulns.Record {
	r := vulns.Record{
		ID: id, Status: status, Source: vulns.SourceRepo, Title: "title of " + id, Description: "desc",
		DefaultStatus: "affected", ProgramFiles: files, FixCommits: []string{"0123456789abcdef0123456789abcdef01234567"},
		MainlineFix: "0123456789abcdef0123456789abcdef01234567",
		Branches: []vulns.Branch{
			{IntroducedVersion: "6.1.43", IntroducedCommit: "89a4d1a89751a0fbd520e64091873e19cc0979e8", FixedVersion: "6.1.78", FixedCommit: "1296c110c5a0b45a8fcf58e7d18bc5da61a565cb"},
			{IntroducedVersion: "6.4.8", IntroducedCommit: "cd66733932399475fe933cb3ec03e687ed401462"},
		},
		Ranges:    []vulns.Range{{Product: "semver", Version: "6.1.78", LessThanOrEqual: "6.1.*", Status: "unaffected", VersionType: "semver"}},
		FirstSeen: time.Date(2024, 2, 22, 0, 0, 0, 0, time.UTC),
	}
	if score > 0 {
		r.CVSS = &vulns.CVSS{Vector: "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", Score: score, Severity: "HIGH", Scenarios: []string{"why"}}
	}
	return r
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Backend() != b.Name {
				t.Errorf("Backend() = %q, want %q", st.Backend(), b.Name)
			}
			a := rec("CVE-2024-26581", vulns.StatusPublished, 7.8, "net/netfilter/nft_set_rbtree.c")
			c := rec("CVE-2024-9", vulns.StatusPublished, 0, "drivers/net/foo.c", "include/linux/foo.h")
			c.FirstSeen = time.Date(2026, 8, 16, 0, 0, 0, 0, time.UTC)
			counts, err := st.ApplySync(ctx, &store.SyncBatch{Full: true, Upserts: []vulns.Record{a, c},
				Problems: []store.Problem{{ID: "CVE-2024-1", File: "cve/published/2024/CVE-2024-1.dyad", Reason: "bad"}},
				State:    store.SyncState{Source: "src", Commit: "c1", SyncedAt: time.Unix(100, 0)}})
			if err != nil {
				t.Fatal(err)
			}
			if counts != (store.SyncCounts{Added: 2}) {
				t.Errorf("counts = %+v, want 2 added", counts)
			}
			got, err := st.CVE(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, a) {
				t.Errorf("CVE(%s) =\n%+v\nwant\n%+v", a.ID, got, a)
			}
			if _, err := st.CVE(ctx, "CVE-1999-1"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("CVE(missing) error = %v, want ErrNotFound", err)
			}
			for _, tc := range []struct {
				name string
				f    store.Filter
				want []string
			}{
				{"all, numeric order", store.Filter{}, []string{"CVE-2024-9", "CVE-2024-26581"}},
				{"min cvss", store.Filter{MinCVSS: 7}, []string{"CVE-2024-26581"}},
				{"file exact", store.Filter{File: "include/linux/foo.h"}, []string{"CVE-2024-9"}},
				{"file dir", store.Filter{File: "net/netfilter"}, []string{"CVE-2024-26581"}},
				{"file dir not prefix of name", store.Filter{File: "net/net"}, nil},
				{"since", store.Filter{Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"CVE-2024-9"}},
				{"status", store.Filter{Status: vulns.StatusRejected}, nil},
				{"limit", store.Filter{Limit: 1}, []string{"CVE-2024-9"}},
			} {
				recs, err := st.CVEs(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range recs {
					ids = append(ids, r.ID)
				}
				if !reflect.DeepEqual(ids, tc.want) {
					t.Errorf("%s: CVEs(%+v) = %v, want %v", tc.name, tc.f, ids, tc.want)
				}
			}

			// Incremental: a rejected record keeps its first-seen date,
			// a deleted one goes, the problem of a record looked at again
			// is cleared.
			rej := a
			rej.Status = vulns.StatusRejected
			rej.FirstSeen = time.Time{}
			counts, err = st.ApplySync(ctx, &store.SyncBatch{Upserts: []vulns.Record{rej}, Deletes: []string{c.ID, "CVE-2000-1"},
				ProblemIDs: []string{"CVE-2024-1"}, State: store.SyncState{Source: "src", Commit: "c2", SyncedAt: time.Unix(200, 0)}})
			if err != nil {
				t.Fatal(err)
			}
			if want := (store.SyncCounts{Updated: 1, Rejected: 1, Deleted: 1}); counts != want {
				t.Errorf("counts = %+v, want %+v", counts, want)
			}
			got, err = st.CVE(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != vulns.StatusRejected || !got.FirstSeen.Equal(a.FirstSeen) {
				t.Errorf("after rejection: status %s first seen %v, want rejected %v", got.Status, got.FirstSeen, a.FirstSeen)
			}
			if _, err := st.CVE(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("deleted record still there: %v", err)
			}
			if ps, err := st.Problems(ctx); err != nil || len(ps) != 0 {
				t.Errorf("Problems() = %v, %v; want none", ps, err)
			}
			state, err := st.SyncState(ctx)
			if err != nil || state.Commit != "c2" {
				t.Errorf("SyncState() = %+v, %v; want commit c2", state, err)
			}

			// Announcements: new ones are added, repository records win,
			// and a later sync replaces the announced record.
			ann := rec("CVE-2026-1", vulns.StatusAnnounced, 0, "fs/x.c")
			ann.Source = vulns.SourceAnnounce
			known := rec(a.ID, vulns.StatusAnnounced, 0)
			ac, err := st.ApplyAnnouncements(ctx, []vulns.Record{ann, known})
			if err != nil {
				t.Fatal(err)
			}
			if ac != (store.AnnounceCounts{Added: 1, Known: 1}) {
				t.Errorf("announce counts = %+v", ac)
			}
			got, err = st.CVE(ctx, ann.ID)
			if err != nil || got.Status != vulns.StatusAnnounced || got.Source != vulns.SourceAnnounce {
				t.Fatalf("announced record = %+v, %v", got, err)
			}
			repo := rec(ann.ID, vulns.StatusPublished, 5.5, "fs/x.c")
			repo.FirstSeen = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
			if _, err := st.ApplySync(ctx, &store.SyncBatch{Upserts: []vulns.Record{repo}, State: store.SyncState{Commit: "c3"}}); err != nil {
				t.Fatal(err)
			}
			got, err = st.CVE(ctx, ann.ID)
			if err != nil || got.Source != vulns.SourceRepo || got.CVSS == nil || !got.FirstSeen.Equal(repo.FirstSeen) {
				t.Errorf("reconciled record = %+v, %v", got, err)
			}
			// Announced records survive a full sync that does not have them.
			ann2 := rec("CVE-2026-2", vulns.StatusAnnounced, 0)
			ann2.Source = vulns.SourceAnnounce
			if _, err := st.ApplyAnnouncements(ctx, []vulns.Record{ann2}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ApplySync(ctx, &store.SyncBatch{Full: true, Upserts: []vulns.Record{repo}, State: store.SyncState{Commit: "c4"}}); err != nil {
				t.Fatal(err)
			}
			all, err := st.CVEs(ctx, store.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 2 || all[0].ID != "CVE-2026-1" || all[1].ID != "CVE-2026-2" {
				t.Errorf("after full sync: %d records %v", len(all), all)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Open(ctx, ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	if _, err := store.Open(ctx, "postgres://nobody:secret@127.0.0.1:1/x?connect_timeout=2"); err == nil {
		t.Error("Open(unreachable postgres) succeeded")
	} else if got := err.Error(); !contains(got, "nobody:xxx@") || contains(got, "secret") {
		t.Errorf("error %q should name the DSN without its password", got)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
