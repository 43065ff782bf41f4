package gitrepo

import "syscall"

// sysProcAttr also has the kernel kill git when tuxtape dies (kill -9
// leaves no one to cancel a context). Children of git do not inherit it;
// RemoveStaleClones deals with those on the next run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
