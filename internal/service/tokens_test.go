package service

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
)

func TestTokens(t *testing.T) {
	ctx := context.Background()
	s := New(Config{DB: filepath.Join(t.TempDir(), "tuxtape.db")})
	defer s.Close()
	admin, adminSecret, err := s.CreateToken(ctx, CreateTokenOptions{Role: authz.Admin})
	if err != nil {
		t.Fatal(err)
	}
	agent, agentSecret, err := s.CreateToken(ctx, CreateTokenOptions{Role: authz.Agent, Machine: "host-1", Expires: time.Hour, By: Actor{ID: admin.ID, From: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, shortSecret, err := s.CreateToken(ctx, CreateTokenOptions{Role: authz.Builder, Expires: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // expiry is stored to the second
	for _, tc := range []struct {
		name, secret string
		want         error
		id           string
	}{
		{"admin", adminSecret, nil, admin.ID},
		{"agent", agentSecret, nil, agent.ID},
		{"expired", shortSecret, authz.ErrExpired, ""},
		{"garbage", "Bearer xyz", authz.ErrBadToken, ""},
		{"unknown ID", "tt1.0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", authz.ErrBadToken, ""},
		{"right ID, wrong key", agentSecret[:len(agentSecret)-4] + "AAAA", authz.ErrBadToken, ""},
	} {
		tok, err := s.Authenticate(ctx, tc.secret)
		if tc.want == nil && (err != nil || tok.ID != tc.id) {
			t.Errorf("%s: Authenticate = %+v, %v; want token %s", tc.name, tok, err, tc.id)
		}
		if tc.want != nil && (!errors.Is(err, ErrUnauthenticated) || !errors.Is(err, tc.want)) {
			t.Errorf("%s: Authenticate = %v, want ErrUnauthenticated (%v)", tc.name, err, tc.want)
		}
	}
	if err := s.RevokeToken(ctx, agent.ID, Actor{ID: admin.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, agentSecret); !errors.Is(err, authz.ErrRevoked) {
		t.Errorf("revoked token: Authenticate = %v, want ErrRevoked", err)
	}
	for _, o := range []CreateTokenOptions{{Role: "root"}, {Role: authz.Agent}, {Role: authz.Admin, Machine: "m"}} {
		if _, _, err := s.CreateToken(ctx, o); !IsInvalid(err) {
			t.Errorf("CreateToken(%+v) = %v, want an InvalidError", o, err)
		}
	}
	log, err := s.Audit(ctx, 0)
	if err != nil || len(log) != 4 {
		t.Fatalf("Audit = %+v, %v; want 4 entries", log, err)
	}
	if log[0].Action != "token.revoke" || log[0].Actor != admin.ID || log[3].Actor != LocalActor || log[2].From != "127.0.0.1:1" {
		t.Errorf("audit log: %+v", log)
	}
	if _, err := s.Audit(ctx, -1); !IsInvalid(err) {
		t.Errorf("Audit(-1) = %v", err)
	}
}

// TestTokenCacheAcrossReplicas: two services on one database stand for
// two servers. A token one of them trusts from its cache stops working
// there within the revocation-check interval when the other revokes it,
// and a token expires on time even while cached.
func TestTokenCacheAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "tuxtape.db")
	a, b := New(Config{DB: db}), New(Config{DB: db})
	defer a.Close()
	defer b.Close()
	const check = 50 * time.Millisecond
	a.SetTokenCacheTTL(check)
	tok, secret, err := b.CreateToken(ctx, CreateTokenOptions{Role: authz.Agent, Machine: "host-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, brief, err := b.CreateToken(ctx, CreateTokenOptions{Role: authz.Agent, Machine: "host-2", Expires: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, brief); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.RevokeToken(ctx, tok.ID, Actor{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.Authenticate(ctx, secret)
		if errors.Is(err, authz.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token revoked on another replica still authenticates after 10 s (check every %v): %v", check, err)
		}
		time.Sleep(check / 2)
	}
	time.Sleep(2 * time.Second) // past the brief token's expiry (stored to the second)
	if _, err := a.Authenticate(ctx, brief); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("an expired token that was cached: %v", err)
	}
}
