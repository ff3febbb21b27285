//go:build !linux

package testenv

import "syscall"

// sysProcAttr: Pdeathsig is Linux-only; elsewhere scripts/testenv.sh's
// clean-up of its folder is the safety net.
func sysProcAttr() *syscall.SysProcAttr { return nil }
