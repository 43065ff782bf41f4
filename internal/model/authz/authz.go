// Package authz is who may call TuxTape's server: bearer tokens with a
// role (admin, reviewer, builder, agent), an agent's token bound to its
// machine, and the audit log of what was done with them. Secrets are
// stored only as hashes and compared in constant time.
package authz

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Role is what a token may do.
type Role string

// The roles.
const (
	Admin    Role = "admin"    // everything, tokens and audit included
	Reviewer Role = "reviewer" // read, and review and approve patches
	Builder  Role = "builder"  // take build jobs and report their results
	Agent    Role = "agent"    // report for its own machine, fetch what it runs
)

// Roles lists the roles.
func Roles() []Role { return []Role{Admin, Reviewer, Builder, Agent} }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q: want admin, reviewer, builder or agent", s)
}

// The reasons a secret is refused. Callers show them all as one
// "unauthenticated" to the caller, and log which.
var (
	ErrBadToken = errors.New("not a valid token")
	ErrRevoked  = errors.New("token revoked")
	ErrExpired  = errors.New("token expired")
)

// Token is a stored token: everything but its secret.
type Token struct {
	ID      string    `json:"id"`
	Role    Role      `json:"role"`
	Machine string    `json:"machine,omitempty"` // an agent token reports only for this machine
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"` // zero: never
	Revoked time.Time `json:"revoked,omitzero"` // zero: in force
	Hash    []byte    `json:"-"`                // SHA-256 of the secret
}

const secretPrefix = "tt1"

var (
	idRE      = regexp.MustCompile(`^[0-9a-f]{16}$`)
	machineRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
)

// ValidMachine checks a machine ID (the agent's /etc/machine-id, or a
// name of the operator's).
func ValidMachine(id string) error {
	if !machineRE.MatchString(id) {
		return fmt.Errorf("machine ID %q: want letters, digits, '.', '_', ':' and '-' (at most 128)", id)
	}
	return nil
}

// New makes a token and its secret, read from random (crypto/rand when
// nil). The secret is "tt1.<id>.<key>": the ID finds the stored hash, the
// 256-bit key proves the holder.
func New(random io.Reader, role Role, machine string, now time.Time, ttl time.Duration) (Token, string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Token{}, "", err
	}
	switch {
	case role == Agent && machine == "":
		return Token{}, "", errors.New("an agent token needs the machine ID it reports for")
	case role != Agent && machine != "":
		return Token{}, "", fmt.Errorf("only agent tokens are bound to a machine, not %s tokens", role)
	case machine != "":
		if err := ValidMachine(machine); err != nil {
			return Token{}, "", err
		}
	}
	if ttl < 0 {
		return Token{}, "", fmt.Errorf("expiry %v: want a positive duration, or none", ttl)
	}
	if random == nil {
		random = rand.Reader
	}
	buf := make([]byte, 8+32)
	if _, err := io.ReadFull(random, buf); err != nil {
		return Token{}, "", fmt.Errorf("make token: %w", err)
	}
	id := hex.EncodeToString(buf[:8])
	secret := secretPrefix + "." + id + "." + base64.RawURLEncoding.EncodeToString(buf[8:])
	t := Token{ID: id, Role: role, Machine: machine, Created: now.UTC().Truncate(time.Second), Hash: hash(secret)}
	if ttl > 0 {
		t.Expires = t.Created.Add(ttl)
	}
	return t, secret, nil
}

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ParseSecret returns the token ID a secret names, or ErrBadToken.
func ParseSecret(secret string) (string, error) {
	parts := strings.Split(secret, ".")
	if len(parts) != 3 || parts[0] != secretPrefix || !idRE.MatchString(parts[1]) || len(parts[2]) != 43 {
		return "", ErrBadToken
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return "", ErrBadToken
	}
	return parts[1], nil
}

// Check says whether secret is t's, and t is in force at now.
func (t *Token) Check(secret string, now time.Time) error {
	if subtle.ConstantTimeCompare(hash(secret), t.Hash) != 1 {
		return ErrBadToken
	}
	if !t.Revoked.IsZero() {
		return ErrRevoked
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return ErrExpired
	}
	return nil
}

// AuditEntry is one thing done: who (a token ID, or "local" for a command
// run against the database itself), what, to what, from where.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // token.create, token.revoke, kernel.add, …
	Target string    `json:"target,omitempty"`
	From   string    `json:"from,omitempty"`
	Detail string    `json:"detail,omitempty"`
}
