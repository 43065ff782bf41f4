package authz

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNewAndCheck(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tok, secret, err := New(nil, Agent, "host-1", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := ParseSecret(secret); err != nil || id != tok.ID {
		t.Fatalf("ParseSecret(%q) = %q, %v; want %q", secret, id, err, tok.ID)
	}
	if bytes.Contains(tok.Hash, []byte(secret)) || len(tok.Hash) != 32 {
		t.Errorf("stored hash %x", tok.Hash)
	}
	tests := []struct {
		name   string
		secret string
		tok    Token
		at     time.Time
		want   error
	}{
		{"good", secret, tok, now, nil},
		{"other secret", strings.Replace(secret, secret[len(secret)-4:], "AAAA", 1), tok, now, ErrBadToken},
		{"expired", secret, tok, now.Add(time.Hour), ErrExpired},
		{"revoked", secret, func() Token { r := tok; r.Revoked = now; return r }(), now, ErrRevoked},
	}
	for _, tt := range tests {
		if err := tt.tok.Check(tt.secret, tt.at); !errors.Is(err, tt.want) {
			t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.want)
		}
	}
	other, secret2, err := New(nil, Admin, "", now, 0)
	if err != nil || !other.Expires.IsZero() || other.ID == tok.ID || secret2 == secret {
		t.Fatalf("second token %+v, %v", other, err)
	}
	if err := other.Check(secret2, now.Add(100*365*24*time.Hour)); err != nil {
		t.Errorf("a token without expiry expired: %v", err)
	}
}

func TestRefused(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		role    Role
		machine string
		ttl     time.Duration
	}{
		{"root", "", 0},
		{Agent, "", 0},
		{Admin, "host-1", 0},
		{Agent, "bad machine", 0},
		{Agent, "h", -time.Second},
	} {
		if _, _, err := New(nil, tc.role, tc.machine, now, tc.ttl); err == nil {
			t.Errorf("New(%q, %q, %v) succeeded", tc.role, tc.machine, tc.ttl)
		}
	}
	for _, s := range []string{"", "tt1", "tt1.x.y", "tt2.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"tt1.0123456789ABCDEF.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "tt1.0123456789abcdef.!!!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		strings.Repeat("a", 10<<20)} {
		if _, err := ParseSecret(s); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseSecret(%.40q) = %v, want ErrBadToken", s, err)
		}
	}
}

func FuzzParseSecret(f *testing.F) {
	_, s, _ := New(nil, Admin, "", time.Now(), 0)
	f.Add(s)
	f.Add("tt1..")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseSecret(s)
		if err == nil && !idRE.MatchString(id) {
			t.Fatalf("ParseSecret(%q) = %q", s, id)
		}
	})
}
