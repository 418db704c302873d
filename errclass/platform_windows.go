package errclass

import "syscall"

// wsaeconnrefused is WSAECONNREFUSED, which package syscall does not name.
const wsaeconnrefused syscall.Errno = 10061

// platformConnectionErrno reports whether e is one of Windows' own
// connection errors, which Windows reports in place of the POSIX ones.
func platformConnectionErrno(e syscall.Errno) bool {
	return e == wsaeconnrefused || e == syscall.WSAECONNRESET || e == syscall.WSAECONNABORTED
}
