package cvesync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrSyncRunning is returned when another sync holds the lock of the
// mirror's directory.
var ErrSyncRunning = errors.New("another sync is running")

// LockName is the lock file syncs take in the directory that holds the
// mirror (the data directory).
const LockName = "sync.lock"

// syncLock is a flock(2) on the data directory's lock file. The kernel drops
// it when its holder dies, however it dies, so a lock is never stale.
type syncLock struct{ f *os.File }

// lockDir takes the lock of the directory that holds mirrorDir, without
// waiting: a second sync would only fail later on git's own locks or race
// the first one's database write, and a cron job is better told at once.
//
// A run that fetches or clones takes it exclusively: it rewrites the
// mirror and owns the temporary clones beside it. A --no-fetch run only
// reads the mirror and takes it shared, so several of them (tests, a shared
// read-only mirror) can read one mirror together while none can run during
// a fetch. On a directory it may not write, a shared lock is taken on the
// lock file as it is, or none when there is no lock file: nobody can fetch
// there either.
func lockDir(mirrorDir string, exclusive bool) (*syncLock, error) {
	dir := filepath.Dir(mirrorDir)
	path := filepath.Join(dir, LockName)
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	writable := err == nil
	if err != nil && !exclusive {
		f, err = os.Open(path)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return &syncLock{}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// The holder writes its pid just after it locks: give it a moment.
		pid := holder(f)
		for i := 0; pid == 0 && i < 20; i++ {
			time.Sleep(10 * time.Millisecond)
			pid = holder(f)
		}
		f.Close()
		if pid > 0 {
			return nil, fmt.Errorf("lock %s: %w (pid %d)", path, ErrSyncRunning, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", path, ErrSyncRunning)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if writable {
		// Only for the message of a sync that finds the lock taken; shared
		// holders overwrite each other, any of them will do.
		pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
		if _, err := f.WriteAt(pid, 0); err == nil {
			_ = f.Truncate(int64(len(pid)))
		}
	}
	return &syncLock{f}, nil
}

// holder is the pid recorded in the lock file if that process still runs,
// else 0.
func holder(f *os.File) int {
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return 0
	}
	return pid
}

// release drops the lock. The file stays: removing it would let a sync
// that opened it just before lock a file nobody else sees.
func (l *syncLock) release() {
	if l.f != nil {
		l.f.Close()
	}
}
