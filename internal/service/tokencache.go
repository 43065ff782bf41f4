package service

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
	"github.com/tuxtape/tuxtape/internal/server/store"
)

// DefaultTokenTTL is how often a server looks in the store for
// revocations: RevokeToken on this Service drops a token at once, and
// another server sharing the database sees a revocation within this long.
const DefaultTokenTTL = 2 * time.Second

// tokenMaxAge is how long an authenticated token is trusted without
// reading it again, while no revocation happens: longer than an agent's
// heartbeat interval (an hour by default), so a fleet's heartbeats cost no
// token read.
const tokenMaxAge = 90 * time.Minute

// maxCachedTokens bounds the cache (about 200 bytes an entry): past it,
// tokens are checked against the store every time.
const maxCachedTokens = 200_000

// tokenCache remembers tokens that authenticated, by the secret's hash.
// An entry lives for tokenMaxAge, but every DefaultTokenTTL (ttl) the
// first caller reads the store's revocation mark, and a mark that changed
// empties the cache: a revocation anywhere takes effect within ttl, and
// the store is read once per ttl rather than once per call.
type tokenCache struct {
	mu sync.Mutex
	// ttl is DefaultTokenTTL when zero; negative turns the cache off.
	ttl   time.Duration
	byKey map[[32]byte]cachedToken
	// gen counts flushes: a token read from the store before one must
	// not be cached after it.
	gen       uint64
	lastSweep time.Time

	mark     store.RevocationMark
	markAt   time.Time // when mark was read; zero: never
	checking bool      // a caller is reading the mark
}

type cachedToken struct {
	t     authz.Token
	until time.Time
}

func (c *tokenCache) timeToLive() time.Duration {
	if c.ttl == 0 {
		return DefaultTokenTTL
	}
	return c.ttl
}

// revalidate reads the revocation mark when it is older than the TTL
// (one caller at a time; the others go on with the cache as it is, for
// at most the time that read takes) and empties the cache when it moved.
func (c *tokenCache) revalidate(ctx context.Context, st store.Store, now time.Time) {
	c.mu.Lock()
	ttl := c.timeToLive()
	if ttl < 0 || c.checking || (!c.markAt.IsZero() && now.Sub(c.markAt) < ttl) {
		c.mu.Unlock()
		return
	}
	c.checking = true
	c.mu.Unlock()

	m, err := st.Revocations(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.checking = false
	if err != nil {
		// Unsure what was revoked: trust nothing cached.
		c.flush()
		c.markAt = time.Time{}
		return
	}
	if c.markAt.IsZero() || m != c.mark {
		c.flush()
	}
	c.mark, c.markAt = m, now
}

func (c *tokenCache) flush() {
	c.gen++
	c.byKey = nil
}

// get returns the token cached for secret's hash, and the generation to
// give put when there is none.
func (c *tokenCache) get(key [32]byte, now time.Time) (authz.Token, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok || !now.Before(e.until) || (!e.t.Expires.IsZero() && !now.Before(e.t.Expires)) {
		return authz.Token{}, c.gen, false
	}
	return e.t, c.gen, true
}

func (c *tokenCache) put(key [32]byte, t authz.Token, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.timeToLive()
	if ttl < 0 || gen != c.gen || c.markAt.IsZero() {
		return
	}
	if c.byKey == nil {
		c.byKey = map[[32]byte]cachedToken{}
	}
	if len(c.byKey) >= maxCachedTokens {
		if now.Sub(c.lastSweep) < time.Minute {
			return // full of live entries: sweeping again now would find none
		}
		c.lastSweep = now
		for k, e := range c.byKey {
			if !now.Before(e.until) {
				delete(c.byKey, k)
			}
		}
		if len(c.byKey) >= maxCachedTokens {
			return
		}
	}
	c.byKey[key] = cachedToken{t: t, until: now.Add(tokenMaxAge)}
}

// drop forgets a token (revoked): its next call reads the store.
func (c *tokenCache) drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.byKey {
		if e.t.ID == id {
			delete(c.byKey, k)
		}
	}
}

func secretKey(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// SetTokenCacheTTL sets how often revocations are looked for
// (DefaultTokenTTL unless set); 0 or less turns the cache off. Call it
// before serving.
func (s *Service) SetTokenCacheTTL(ttl time.Duration) {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	if ttl <= 0 {
		ttl = -1
	}
	s.tokens.ttl = ttl
	s.tokens.byKey = nil
	s.tokens.markAt = time.Time{}
}
