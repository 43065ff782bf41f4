package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery.
const (
	HeaderSignature = "X-TuxTape-Signature"
	HeaderTimestamp = "X-TuxTape-Timestamp"
	HeaderEvent     = "X-TuxTape-Event"
	HeaderDelivery  = "X-TuxTape-Delivery"
)

// DefaultMaxAge is how old a signed timestamp Verify accepts by default:
// enough for clock skew, short enough that a captured request is soon
// useless.
const DefaultMaxAge = 5 * time.Minute

// Verification errors; every error of Verify wraps one of them.
var (
	ErrNoSignature  = errors.New("webhook request is not signed")
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp outside the accepted window")
)

// Sign returns the X-TuxTape-Signature value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

// mac is HMAC-SHA256 over "<timestamp>.<body>": the timestamp is bound to
// the body, so neither can be replaced alone.
func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, ts)
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery's headers against its body as a receiver got
// them: the timestamp must be within maxAge of now (either way; 0 means
// DefaultMaxAge) and one of the signature's sha256= values must be the
// HMAC of it and the body under one of secrets (several secrets, and
// several values in the header, let a secret be rotated without a gap).
// Comparison is constant-time.
func Verify(h http.Header, body []byte, now time.Time, maxAge time.Duration, secrets ...[]byte) error {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	sig, ts := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || ts == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrBadSignature, clip(ts))
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("%w: signed %v ago, accepted up to %v", ErrStale, d.Round(time.Second), maxAge)
	}
	for _, v := range strings.Split(sig, ",") {
		hexMAC, ok := strings.CutPrefix(strings.TrimSpace(v), "sha256=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexMAC)
		if err != nil {
			continue
		}
		for _, s := range secrets {
			if hmac.Equal(got, mac(s, ts, body)) {
				return nil
			}
		}
	}
	return ErrBadSignature
}

// MaxBody bounds what VerifyRequest reads of a request body.
const MaxBody = 1 << 20

// VerifyRequest reads r's body (up to MaxBody) and verifies it with
// Verify at the current time; it returns the body when it is authentic.
func VerifyRequest(r *http.Request, maxAge time.Duration, secrets ...[]byte) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read webhook body: %w", err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("read webhook body: over %d bytes", MaxBody)
	}
	if err := Verify(r.Header, body, time.Now(), maxAge, secrets...); err != nil {
		return nil, err
	}
	return body, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
