package errclass

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// Timeout reports whether err is a timeout: the
// class "timeout". It is true when err matches [context.DeadlineExceeded]
// with [errors.Is] (and so middleware.ErrTimeout), or when
// any error in err's tree has a Timeout() bool method that reports true: a
// [net.Error] that timed out (a read or dial past its deadline, "i/o
// timeout"), [os.ErrDeadlineExceeded], a [*net.DNSError] with IsTimeout, an
// [*net/url.Error] around any of these, or a [syscall.Errno] the standard library
// counts as a timeout (ETIMEDOUT, EAGAIN). It is false for nil. Safe for
// concurrent use; it does not allocate unless an Unwrap method does.
func Timeout(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || inErrorTree(err, hasTimeout)
}

func hasTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

// Connection reports whether err is a failure of the connection to the
// other side rather than an answer from it: the class "connection". It is true when any error in err's tree
// is:
//   - the [syscall.Errno] ECONNREFUSED, ECONNRESET, ECONNABORTED or EPIPE
//     (connection refused, reset by peer, aborted, broken pipe), or on
//     Windows WSAECONNREFUSED, WSAECONNRESET or WSAECONNABORTED, bare or
//     inside a [*net.OpError] or [*os.SyscallError] (a read or write on a
//     connection the peer dropped);
//   - [io.ErrUnexpectedEOF] (the peer closed the connection mid-message);
//   - [net.ErrClosed] (use of a closed network connection);
//   - a [*net.DNSError] with IsTimeout or IsTemporary set (a lookup that
//     may succeed if tried again);
//   - a [*net.OpError] with Op "dial": any failure to connect (refused,
//     unreachable, timed out), except one caused by the caller's
//     cancellation ([context.Canceled]), a permanent DNS failure (a
//     [*net.DNSError] without IsTimeout or IsTemporary, such as "no such
//     host"), or a bad address ([*net.AddrError], [*net.ParseError],
//     [net.UnknownNetworkError]), which trying again cannot fix.
//
// A bare [io.EOF] is not a connection error: it is the normal end of a
// stream. A dial that timed out is both a connection error and a timeout. It
// is false for nil. Safe for concurrent use; it does not allocate unless an
// Unwrap method does.
func Connection(err error) bool {
	if err == nil {
		return false
	}
	return inErrorTree(err, isConnectionNode)
}

func isConnectionNode(err error) bool {
	switch e := err.(type) {
	case syscall.Errno:
		switch e {
		case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE:
			return true
		}
		return platformConnectionErrno(e)
	case *net.DNSError:
		return e.IsTimeout || e.IsTemporary
	case *net.OpError:
		return e.Op == "dial" && !errors.Is(e.Err, context.Canceled) && !inErrorTree(e.Err, isPermanentDialNode)
	}
	return err == io.ErrUnexpectedEOF || err == net.ErrClosed
}

// isPermanentDialNode reports whether err, found under a dial error, makes
// the dial fail whatever the number of tries.
func isPermanentDialNode(err error) bool {
	switch e := err.(type) {
	case *net.DNSError:
		return !e.IsTimeout && !e.IsTemporary
	case *net.AddrError, *net.ParseError, net.UnknownNetworkError:
		return true
	}
	return false
}

// HTTP5xx reports whether err carries an HTTP status from 500 to 599: the
// class "http-5xx", for errors a go-kit HTTP client's decode
// function returns for a server error. The status is that of the first error
// in err's tree (in the order of [errors.As]) with a StatusCode() int method,
// go-kit's [httptransport.StatusCoder] convention, so an error type that
// serves go-kit's server-side encoder is classified on the client side too.
// It is false for nil and for an error without a status. Safe for concurrent
// use.
//
// [httptransport.StatusCoder]: https://pkg.go.dev/github.com/go-kit/kit/transport/http#StatusCoder
func HTTP5xx(err error) bool {
	code, ok := httpStatus(err)
	return ok && code >= 500 && code <= 599
}

// HTTP429 reports whether err carries the HTTP status 429 Too Many
// Requests: the class "http-429". The status is found as
// [HTTP5xx] finds it. It is false for nil and for an error without a
// status. Safe for concurrent use.
func HTTP429(err error) bool {
	code, ok := httpStatus(err)
	return ok && code == 429
}

// statusCoder is go-kit's httptransport.StatusCoder, as an error.
type statusCoder interface {
	error
	StatusCode() int
}

func httpStatus(err error) (int, bool) {
	if err == nil {
		return 0, false
	}
	sc, ok := errors.AsType[statusCoder](err)
	if !ok {
		return 0, false
	}
	return sc.StatusCode(), true
}

// inErrorTree reports whether match is true for err or any error it wraps,
// walking Unwrap() error and Unwrap() []error depth first, as [errors.Is]
// does.
func inErrorTree(err error, match func(error) bool) bool {
	for err != nil {
		if match(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if inErrorTree(e, match) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
