package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// stampName marks a cached directory as complete. It is written last, so
// a directory without it was left by a killed run and is made again.
const stampName = ".tuxtape-test-complete"

// cacheMu serializes the cached directories within one test binary; the
// file lock in CachedDir does it between binaries, which go test runs in
// parallel.
var cacheMu sync.Mutex

// cacheRoot is where unpacked test assets are kept between runs:
// $XDG_CACHE_HOME/tuxtape/test, or the temporary directory when there is
// no user cache directory.
func cacheRoot() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "tuxtape-test-cache")
	}
	return filepath.Join(base, "tuxtape", "test")
}

// CachedDir returns a directory of the user cache kept between test runs
// ($XDG_CACHE_HOME/tuxtape/test/name), filled by fill the first time. key
// says what the directory holds; a stamp with another key means the
// directory is stale and is made again. A test binary that waits for
// another one filling it gets the finished directory.
func CachedDir(name, key string, fill func(dir string) error) (string, error) {
	cacheMu.Lock()
	defer cacheMu.Unlock()
	dir := filepath.Join(cacheRoot(), name)
	stamp := filepath.Join(dir, stampName)
	if b, err := os.ReadFile(stamp); err == nil && string(b) == key {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close() // closing releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	// Another binary may have made it while this one waited.
	if b, err := os.ReadFile(stamp); err == nil && string(b) == key {
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := fill(dir); err != nil {
		return "", err
	}
	if err := os.WriteFile(stamp, []byte(key), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}
