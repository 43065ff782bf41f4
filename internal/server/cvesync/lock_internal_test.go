package cvesync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockDir: a fetching run excludes every other run on the data
// directory; --no-fetch runs share it; the refusal names the holder.
func TestLockDir(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second bool // exclusive?
		wantBusy      bool
	}{
		{"fetch then fetch", true, true, true},
		{"fetch then no-fetch", true, false, true},
		{"no-fetch then fetch", false, true, true},
		{"no-fetch then no-fetch", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mirror := filepath.Join(t.TempDir(), "vulns.git")
			a, err := lockDir(mirror, tc.first)
			if err != nil {
				t.Fatal(err)
			}
			b, err := lockDir(mirror, tc.second)
			if !tc.wantBusy {
				if err != nil {
					t.Fatalf("second lock: %v", err)
				}
				b.release()
				a.release()
				return
			}
			if !errors.Is(err, ErrSyncRunning) || !strings.Contains(err.Error(), fmt.Sprintf("another sync is running (pid %d)", os.Getpid())) {
				t.Errorf("second lock = %v, want ErrSyncRunning naming pid %d", err, os.Getpid())
			}
			a.release()
			// Released, whoever died or returned, it is free again.
			c, err := lockDir(mirror, tc.second)
			if err != nil {
				t.Errorf("lock after release: %v", err)
			} else {
				c.release()
			}
		})
	}
}
