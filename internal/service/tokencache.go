package service

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/tuxtape/tuxtape/internal/model/authz"
)

// DefaultTokenTTL is how long an authenticated token is trusted without
// reading the store again. RevokeToken on this Service drops it at once;
// another server sharing the database sees a revocation within this long.
const DefaultTokenTTL = 2 * time.Second

// maxCachedTokens bounds the cache (about 200 bytes an entry): past it,
// tokens are checked against the store every time.
const maxCachedTokens = 200_000

// tokenCache remembers tokens that authenticated, by the secret's hash,
// so that a client making many calls costs one store read per TTL.
type tokenCache struct {
	mu sync.Mutex
	// ttl is DefaultTokenTTL when zero; negative turns the cache off.
	ttl   time.Duration
	byKey map[[32]byte]cachedToken
	// gen counts revocations: a token read from the store before one
	// must not be cached after it.
	gen       uint64
	lastSweep time.Time
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
	if ttl < 0 || gen != c.gen {
		return
	}
	if c.byKey == nil {
		c.byKey = map[[32]byte]cachedToken{}
	}
	if len(c.byKey) >= maxCachedTokens {
		if now.Sub(c.lastSweep) < ttl {
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
	c.byKey[key] = cachedToken{t: t, until: now.Add(ttl)}
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

// SetTokenCacheTTL sets how long an authenticated token is trusted
// without a store read (DefaultTokenTTL unless set); 0 or less turns the
// cache off. Call it before serving.
func (s *Service) SetTokenCacheTTL(ttl time.Duration) {
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	if ttl <= 0 {
		ttl = -1
	}
	s.tokens.ttl = ttl
	s.tokens.byKey = nil
}
