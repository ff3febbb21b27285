package testenv

import "syscall"

// sysProcAttr makes a private server die with the test binary (Pdeathsig),
// so a test that panics or times out leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
