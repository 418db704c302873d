package middleware

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"

	kitendpoint "github.com/go-kit/kit/endpoint"
)

// builtinErrorClassNames are the names of the built-in error classes, sorted.
var builtinErrorClassNames = [...]string{"connection", "http-429", "http-5xx", "timeout"}

// builtinErrorClass returns the built-in class called name. It is a switch,
// not a map, so the built-ins are immutable.
func builtinErrorClass(name string) (func(error) bool, bool) {
	switch name {
	case "timeout":
		return IsTimeout, true
	case "connection":
		return IsConnection, true
	case "http-5xx":
		return IsHTTP5xx, true
	case "http-429":
		return IsHTTP429, true
	}
	return nil, false
}

// IsTimeout reports whether err is a timeout: the guide's TimeoutError, the
// built-in error class "timeout". It is true when err matches
// [context.DeadlineExceeded] with [errors.Is] (and so [ErrTimeout]), or when
// any error in err's tree has a Timeout() bool method that reports true: a
// [net.Error] that timed out (a read or dial past its deadline, "i/o
// timeout"), [os.ErrDeadlineExceeded], a [*net.DNSError] with IsTimeout, an
// [*net/url.Error] around any of these, or a [syscall.Errno] the standard library
// counts as a timeout (ETIMEDOUT, EAGAIN). It is false for nil. Safe for
// concurrent use; it does not allocate unless an Unwrap method does.
func IsTimeout(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || inErrorTree(err, hasTimeout)
}

func hasTimeout(err error) bool {
	t, ok := err.(interface{ Timeout() bool })
	return ok && t.Timeout()
}

// IsConnection reports whether err is a failure of the connection to the
// other side rather than an answer from it: the guide's ConnectionError, the
// built-in error class "connection". It is true when any error in err's tree
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
func IsConnection(err error) bool {
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

// IsHTTP5xx reports whether err carries an HTTP status from 500 to 599: the
// built-in error class "http-5xx", for errors a go-kit HTTP client's decode
// function returns for a server error. The status is that of the first error
// in err's tree (in the order of [errors.As]) with a StatusCode() int method,
// go-kit's [httptransport.StatusCoder] convention, so an error type that
// serves go-kit's server-side encoder is classified on the client side too.
// It is false for nil and for an error without a status. Safe for concurrent
// use.
//
// [httptransport.StatusCoder]: https://pkg.go.dev/github.com/go-kit/kit/transport/http#StatusCoder
func IsHTTP5xx(err error) bool {
	code, ok := httpStatus(err)
	return ok && code >= 500 && code <= 599
}

// IsHTTP429 reports whether err carries the HTTP status 429 Too Many
// Requests: the built-in error class "http-429". The status is found as
// [IsHTTP5xx] finds it. It is false for nil and for an error without a
// status. Safe for concurrent use.
func IsHTTP429(err error) bool {
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

// BusinessError returns the error a response carries by go-kit's
// [kitendpoint.Failer] convention (a business outcome reported in the
// response, with a nil transport error, as go-kit's addsvc does), or nil when
// resp does not implement Failer or its Failed method returns nil. The
// toolkit's layers see an endpoint's error only; a Failer's error is a
// successful call to them unless a layer's configuration says otherwise.
// It does not allocate.
func BusinessError(resp any) error {
	if f, ok := resp.(kitendpoint.Failer); ok {
		return f.Failed()
	}
	return nil
}

// ErrorClasses is a registry of named error classes: predicates over errors,
// such as "connection" or "timeout", that a configuration names rather than
// codes (retry_on: [connection, timeout] in a policy file). It always holds
// the built-in classes, which cannot be replaced:
//
//   - "timeout": [IsTimeout]
//   - "connection": [IsConnection]
//   - "http-5xx": [IsHTTP5xx]
//   - "http-429": [IsHTTP429]
//
// and the classes added with [ErrorClasses.Register]. [ErrorClasses.Match]
// turns a list of names into one predicate for [RetryConfig.RetryIf]:
//
//	var classes middleware.ErrorClasses
//	retry := middleware.Retry(middleware.RetryConfig{
//		RetryIf: classes.MustMatch("connection", "timeout"),
//	})
//
// The zero value holds the built-ins only and is ready to use, as is
// [NewErrorClasses]'s result; a nil *ErrorClasses holds the built-ins only
// and can be read but not registered into. An ErrorClasses must not be
// copied after first use. Its methods are safe for concurrent use; the
// predicates Match returns hold no lock and do not see classes registered
// after they were made.
type ErrorClasses struct {
	mu      sync.RWMutex
	classes map[string]func(error) bool // registered with Register; never the built-ins
}

// NewErrorClasses returns a new registry holding the built-in error classes
// only.
func NewErrorClasses() *ErrorClasses { return &ErrorClasses{} }

// Register adds the error class name, matched by match, and returns nil; or
// it returns an error matching [ErrInvalidConfig], and adds nothing, when
// name is empty or not made of lower-case ASCII letters, digits and the
// characters '-', '_' and '.', when a class of that name (built-in or not)
// already exists, or when match is nil. match must be safe for concurrent
// use.
func (c *ErrorClasses) Register(name string, match func(error) bool) error {
	if err := validErrorClassName(name); err != nil {
		return err
	}
	if match == nil {
		return fmt.Errorf("%w: error class %q: nil match func", ErrInvalidConfig, name)
	}
	if _, ok := builtinErrorClass(name); ok {
		return fmt.Errorf("%w: error class %q: already registered (built in)", ErrInvalidConfig, name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.classes[name]; ok {
		return fmt.Errorf("%w: error class %q: already registered", ErrInvalidConfig, name)
	}
	if c.classes == nil {
		c.classes = make(map[string]func(error) bool)
	}
	c.classes[name] = match
	return nil
}

func validErrorClassName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: error class name is empty", ErrInvalidConfig)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("%w: error class name %q: %q not allowed (use a-z, 0-9, '-', '_', '.')",
				ErrInvalidConfig, name, r)
		}
	}
	return nil
}

// Lookup returns the predicate of the error class name and true, or nil and
// false when there is no such class. Built-in names resolve to the built-ins.
func (c *ErrorClasses) Lookup(name string) (func(error) bool, bool) {
	if f, ok := builtinErrorClass(name); ok {
		return f, true
	}
	if c == nil {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	f, ok := c.classes[name]
	return f, ok
}

// Names returns the names of every class, built-in and registered, sorted.
func (c *ErrorClasses) Names() []string {
	names := slices.Clone(builtinErrorClassNames[:])
	if c != nil {
		c.mu.RLock()
		for name := range c.classes {
			names = append(names, name)
		}
		c.mu.RUnlock()
	}
	slices.Sort(names)
	return names
}

// Match returns a predicate that reports whether an error belongs to any of
// the classes named, for [RetryConfig.RetryIf] (or any other place that
// takes a func(error) bool). A name given twice counts once. It returns an
// error matching [ErrInvalidConfig], naming every unknown class and the
// known ones, when a name is not a class, or when no name is given.
//
// The predicate resolves the names now: it holds no lock, does not allocate
// unless an error's Unwrap method does, and does not change when classes are
// registered later.
func (c *ErrorClasses) Match(names ...string) (func(error) bool, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no error class named", ErrInvalidConfig)
	}
	var (
		fns     []func(error) bool
		seen    = make(map[string]bool, len(names))
		unknown []string
	)
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		f, ok := c.Lookup(name)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		fns = append(fns, f)
	}
	if len(unknown) > 0 {
		word := "class"
		if len(unknown) > 1 {
			word = "classes"
		}
		return nil, fmt.Errorf("%w: unknown error %s %s (known: %s)",
			ErrInvalidConfig, word, strings.Join(unknown, ", "), strings.Join(c.Names(), ", "))
	}
	if len(fns) == 1 {
		return fns[0], nil
	}
	return func(err error) bool {
		for _, f := range fns {
			if f(err) {
				return true
			}
		}
		return false
	}, nil
}

// MustMatch is like [ErrorClasses.Match] but panics with Match's error,
// matching [ErrInvalidConfig], when a name is not a class: for predicates
// built at construction, like [regexp.MustCompile].
func (c *ErrorClasses) MustMatch(names ...string) func(error) bool {
	f, err := c.Match(names...)
	mustValid(err)
	return f
}
