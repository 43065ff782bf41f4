package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// Actor says who asks for a change, for the audit log: a token ID, or
// LocalActor for a command run against the database itself.
type Actor struct {
	ID   string // token ID or LocalActor
	From string // the peer address, when remote
}

// LocalActor is the actor of commands run on the database's own machine:
// whoever can open the database is its owner.
const LocalActor = "local"

// ErrUnauthenticated: the secret is not a token in force. The wrapped
// reason (authz.ErrBadToken, ErrRevoked, ErrExpired) is for the log, not
// for the caller.
var ErrUnauthenticated = errors.New("unauthenticated")

// CreateTokenOptions describe a token to make.
type CreateTokenOptions struct {
	Role    authz.Role
	Machine string        // agent tokens: the machine it reports for
	Expires time.Duration // 0: never
	By      Actor
}

// CreateToken makes a token and returns it with its secret, which is
// shown once and stored only as a hash.
func (s *Service) CreateToken(ctx context.Context, o CreateTokenOptions) (authz.Token, string, error) {
	t, secret, err := authz.New(nil, o.Role, o.Machine, time.Now(), o.Expires)
	if err != nil {
		return authz.Token{}, "", &InvalidError{err.Error()}
	}
	st, err := s.Store(ctx)
	if err != nil {
		return authz.Token{}, "", err
	}
	detail := "role " + string(t.Role)
	if t.Machine != "" {
		detail += ", machine " + t.Machine
	}
	if !t.Expires.IsZero() {
		detail += ", expires " + t.Expires.Format(time.RFC3339)
	}
	if err := st.AddToken(ctx, t, audit(o.By, "token.create", t.ID, detail)); err != nil {
		return authz.Token{}, "", err
	}
	return t, secret, nil
}

func audit(by Actor, action, target, detail string) authz.AuditEntry {
	id := by.ID
	if id == "" {
		id = LocalActor
	}
	return authz.AuditEntry{At: time.Now().UTC(), Actor: id, Action: action, Target: target, From: by.From, Detail: detail}
}

// Tokens lists the tokens.
func (s *Service) Tokens(ctx context.Context) ([]authz.Token, error) {
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.Tokens(ctx)
}

// RevokeToken revokes a token; its secret stops working at once on this
// Service, and within DefaultTokenTTL on other servers sharing the
// database (their caches of authenticated tokens).
func (s *Service) RevokeToken(ctx context.Context, id string, by Actor) error {
	st, err := s.Store(ctx)
	if err != nil {
		return err
	}
	if err := st.RevokeToken(ctx, id, audit(by, "token.revoke", id, "")); err != nil {
		return err
	}
	s.tokens.drop(id)
	return nil
}

// Authenticate finds the token a secret belongs to, if it is in force. A
// token that authenticated is trusted for DefaultTokenTTL without reading
// the store again (tokencache.go).
func (s *Service) Authenticate(ctx context.Context, secret string) (authz.Token, error) {
	id, err := authz.ParseSecret(secret)
	if err != nil {
		return authz.Token{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	now := time.Now()
	st, err := s.Store(ctx)
	if err != nil {
		return authz.Token{}, err
	}
	s.tokens.revalidate(ctx, st, now)
	key := secretKey(secret)
	t, gen, ok := s.tokens.get(key, now)
	if ok {
		return t, nil
	}
	t, err = st.Token(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return authz.Token{}, fmt.Errorf("%w: %w", ErrUnauthenticated, authz.ErrBadToken)
	}
	if err != nil {
		return authz.Token{}, err
	}
	if err := t.Check(secret, now); err != nil {
		return authz.Token{}, fmt.Errorf("%w: token %s: %w", ErrUnauthenticated, id, err)
	}
	s.tokens.put(key, t, gen, now)
	return t, nil
}

// Audit lists the audit log, newest first (limit 0: all of it).
func (s *Service) Audit(ctx context.Context, limit int) ([]authz.AuditEntry, error) {
	if limit < 0 {
		return nil, invalidf("--limit %d: want 0 (all) or more", limit)
	}
	st, err := s.Store(ctx)
	if err != nil {
		return nil, err
	}
	return st.Audit(ctx, limit)
}
