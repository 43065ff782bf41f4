package store

import (
	"testing"
	"time"
)

// TestExpiryUnix: an expiry kept in whole seconds is never earlier than
// asked (TestTokenCacheAcrossReplicas's one-second token once expired at
// once when created late in a second).
func TestExpiryUnix(t *testing.T) {
	for _, tt := range []struct {
		in   time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.Unix(100, 0), 100},
		{time.Unix(100, 1), 101},
		{time.Unix(100, 999_999_999), 101},
	} {
		if got := expiryUnix(tt.in); got != tt.want {
			t.Errorf("expiryUnix(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
