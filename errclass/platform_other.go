//go:build !windows

package errclass

import "syscall"

// platformConnectionErrno reports whether e is a platform's own connection
// error beyond the POSIX ones; there are none outside Windows.
func platformConnectionErrno(syscall.Errno) bool { return false }
