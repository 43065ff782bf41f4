package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/server/store"
	"github.com/tuxtape/tuxtape/internal/testenv"
)

func TestTokensAndAudit(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st, err := store.Open(ctx, b.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			admin, _, err := authz.New(nil, authz.Admin, "", now, 0)
			if err != nil {
				t.Fatal(err)
			}
			agent, secret, err := authz.New(nil, authz.Agent, "host-1", now.Add(time.Second), 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for i, tok := range []authz.Token{admin, agent} {
				if err := st.AddToken(ctx, tok, authz.AuditEntry{At: now.Add(time.Duration(i) * time.Second), Actor: "local", Action: "token.create", Target: tok.ID}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.AddToken(ctx, agent, authz.AuditEntry{At: now, Actor: "local", Action: "token.create"}); err == nil {
				t.Error("a second token with the same ID was stored")
			}
			got, err := st.Token(ctx, agent.ID)
			if err != nil || !reflect.DeepEqual(got, agent) {
				t.Fatalf("Token round trip:\n got %+v, %v\nwant %+v", got, err, agent)
			}
			if err := got.Check(secret, now.Add(time.Hour)); err != nil {
				t.Errorf("the stored token does not check its secret: %v", err)
			}
			if _, err := st.Token(ctx, "0000000000000000"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing token: %v", err)
			}
			all, err := st.Tokens(ctx)
			if err != nil || len(all) != 2 || all[0].ID != admin.ID {
				t.Errorf("Tokens = %+v, %v", all, err)
			}
			revokedAt := now.Add(time.Hour)
			if err := st.RevokeToken(ctx, agent.ID, authz.AuditEntry{At: revokedAt, Actor: admin.ID, Action: "token.revoke", Target: agent.ID, From: "127.0.0.1:4242"}); err != nil {
				t.Fatal(err)
			}
			if err := st.RevokeToken(ctx, "0000000000000000", authz.AuditEntry{At: revokedAt, Actor: admin.ID, Action: "token.revoke"}); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("revoke a missing token: %v", err)
			}
			got, _ = st.Token(ctx, agent.ID)
			if !got.Revoked.Equal(revokedAt) || !errors.Is(got.Check(secret, revokedAt), authz.ErrRevoked) {
				t.Errorf("revoked token: %+v", got)
			}
			if err := st.AddAudit(ctx, authz.AuditEntry{At: now}); err == nil {
				t.Error("an audit entry without actor and action was written")
			}
			log, err := st.Audit(ctx, 0)
			if err != nil || len(log) != 3 {
				t.Fatalf("Audit = %+v, %v; want 3 entries", log, err)
			}
			if log[0].Action != "token.revoke" || log[0].From != "127.0.0.1:4242" || !log[0].At.Equal(revokedAt) || log[2].Target != admin.ID {
				t.Errorf("Audit, newest first: %+v", log)
			}
			if top, _ := st.Audit(ctx, 1); len(top) != 1 {
				t.Errorf("Audit(limit 1) = %d entries", len(top))
			}
		})
	}
}
