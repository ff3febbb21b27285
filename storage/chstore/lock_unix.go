//go:build unix

package chstore

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock (flock) on path, creating it. The
// kernel drops the lock when the process dies, even by SIGKILL, so a
// restarted processor is never locked out by its dead predecessor.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("in use by another Tollgate process (one spool directory per process)")
		}
		return nil, err
	}
	return f, nil
}
