package gitrepo

import (
	"os/exec"
	"syscall"
	"time"
)

// waitDelay bounds how long Wait waits for git's pipes to close after git
// was killed; a grandchild still holding them must not hang a sync.
const waitDelay = 5 * time.Second

// detach runs cmd in a process group of its own and, when its context is
// cancelled, kills the whole group: git clone and fetch start index-pack
// and others, which read the pack themselves and would go on writing into
// the data directory after git alone was killed.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error {
		// The negative pid names the group; git is its leader.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			return err
		}
		return nil
	}
	cmd.WaitDelay = waitDelay
}
