// Package endpointtest provides test doubles for go-kit endpoints: a scripted
// endpoint that plays a sequence of outcomes (success, error, slow, stall,
// panic, hang), failures that look like the real ones (connection refused,
// an i/o timeout, an HTTP 503 with Retry-After, a 429), a counting wrapper,
// [Registry], a fresh circuit-breaker registry for each test, and
// [Baseline], the go-kit chain that middleware benchmarks are measured
// against. Use them in table-driven tests of middleware and of your own
// services. Everything here
// is safe for concurrent use, and works inside [testing/synctest] bubbles,
// where its sleeps take fake time.
//
// # Breaker state in tests
//
// Breakers are shared by name through their registry, and the default one,
// [registry.Default], lives as long as the test binary: a breaker a test
// opened is still open in the next test, in the next run of the same test
// (go test -count=3), and in the next synctest bubble, whose clock starts
// again so that the breaker never half-opens there. Give every test a
// registry of its own with [Registry], through a [middleware.Stack]'s
// Registry field (or BreakerConfig.Registry and RateLimitConfig.Registry for
// layers chained by hand):
//
//	stack := middleware.Stack{Registry: endpointtest.Registry(t), ...}
package endpointtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/registry"
	resiliencehttp "github.com/resiliencekit/resilience/transport/http"
)

// ErrScripted is the error an "err" step returns when it names no message of
// its own. Every scripted failure matches it: the errors of "err:msg",
// "refused", "timeout" and "http:STATUS" steps too.
var ErrScripted = errors.New("endpointtest: scripted failure")

// Registry returns a new, empty registry for one test (tb is that test):
// give it to the [middleware.Stack] (its Registry field) or to the layers'
// configs (BreakerConfig.Registry, RateLimitConfig.Registry) in place of
// [registry.Default], so that no breaker opened by another test, another run
// of this one (-count=N) or another synctest bubble is found in it. Call it
// inside the bubble, once per run. When the test ends the registry is
// closed.
func Registry(tb testing.TB) *registry.Registry {
	tb.Helper()
	reg := registry.New(registry.Config{})
	tb.Cleanup(func() { _ = reg.Close() })
	return reg
}

// Kind is what one step of a script does.
type Kind uint8

// The step kinds.
const (
	// KindOK returns the step's Response and a nil error.
	KindOK Kind = iota
	// KindErr returns the step's Err.
	KindErr
	// KindSlow waits Delay, then returns Response; if the context ends
	// first it returns the context's error (a callee that honours ctx).
	KindSlow
	// KindStall sleeps Delay whatever the context does, then returns
	// Response (a callee that ignores ctx).
	KindStall
	// KindPanic panics with the step's Value.
	KindPanic
	// KindHang blocks until the context ends and returns its error.
	KindHang
)

// Step is one scripted outcome. Build steps with [OK], [Err], [Slow],
// [Stall], [Panic] and [Hang], or parse them with [ParseStep].
type Step struct {
	Kind     Kind
	Response any
	Err      error
	Delay    time.Duration
	Value    any
}

// OK returns a step that succeeds with resp.
func OK(resp any) Step { return Step{Kind: KindOK, Response: resp} }

// Err returns a step that fails with err.
func Err(err error) Step { return Step{Kind: KindErr, Err: err} }

// Slow returns a step that succeeds with resp after d, or returns the
// context's error if the context ends first.
func Slow(d time.Duration, resp any) Step { return Step{Kind: KindSlow, Delay: d, Response: resp} }

// Stall returns a step that ignores the context: it sleeps d, then succeeds
// with resp.
func Stall(d time.Duration, resp any) Step { return Step{Kind: KindStall, Delay: d, Response: resp} }

// Panic returns a step that panics with v.
func Panic(v any) Step { return Step{Kind: KindPanic, Value: v} }

// Hang returns a step that blocks until the context ends and returns the
// context's error.
func Hang() Step { return Step{Kind: KindHang} }

// Refused returns a step that fails as a dial to a closed port does: a
// [*net.OpError] (Op "dial") around [syscall.ECONNREFUSED], which
// errclass.Connection and the "connection" error class match. It also
// matches [ErrScripted].
func Refused() Step {
	return Err(&scriptedError{err: &net.OpError{Op: "dial", Net: "tcp", Addr: scriptAddr, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}})
}

// TimedOut returns a step that fails as a read past its deadline does: a
// [*net.OpError] around [os.ErrDeadlineExceeded] ("i/o timeout", a
// [net.Error] whose Timeout is true), which errclass.Timeout and the
// "timeout" error class match, and the "connection" class does not. It does
// not match [context.DeadlineExceeded]: the caller's context is not done. It
// also matches [ErrScripted].
func TimedOut() Step {
	return Err(&scriptedError{err: &net.OpError{Op: "read", Net: "tcp", Addr: scriptAddr, Err: os.ErrDeadlineExceeded}})
}

// HTTP returns a step that fails with the error http.DecodeHTTPError (package
// transport/http) makes of an HTTP response with that status and a
// Retry-After of retryAfter (0: no header): an *HTTPError, which the "http-5xx"
// and "http-429" error classes match by its status and whose RetryAfter the
// retry layer honours. It also matches [ErrScripted].
func HTTP(status int, retryAfter time.Duration) Step {
	return Err(&scriptedError{err: &resiliencehttp.HTTPError{Status: status, Delay: retryAfter}})
}

// scriptAddr is the address the scripted network errors name.
var scriptAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}

// scriptedError is the error of an "err:msg" step (msg) or of a scripted
// realistic failure (err, which it wraps). It matches ErrScripted.
type scriptedError struct {
	msg string
	err error
}

func (e *scriptedError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.msg
}
func (e *scriptedError) Unwrap() error        { return e.err }
func (e *scriptedError) Is(target error) bool { return target == ErrScripted }

// ParseStep parses one step written as text:
//
//	ok            success, response "ok"
//	ok:VALUE      success, response "VALUE"
//	err           failure with ErrScripted
//	err:MSG       failure with an error saying MSG (matches ErrScripted)
//	refused       connection refused (see [Refused]): the "connection" class
//	timeout       an i/o timeout (see [TimedOut]): the "timeout" class
//	http:STATUS   an HTTP error response, 400 to 599 (see [HTTP]): http:503
//	              is in the "http-5xx" class, http:429 in "http-429"
//	http:STATUS:D the same with a Retry-After of D (time.ParseDuration),
//	              as http:503:2s
//	slow:DUR      success after DUR (time.ParseDuration), honouring ctx
//	stall:DUR     success after DUR, ignoring ctx
//	panic         panic with "endpointtest: scripted panic"
//	panic:MSG     panic with the string MSG
//	hang          block until ctx ends
func ParseStep(s string) (Step, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	switch kind {
	case "ok":
		if hasArg {
			return OK(arg), nil
		}
		return OK("ok"), nil
	case "err":
		if hasArg {
			return Err(&scriptedError{msg: arg}), nil
		}
		return Err(ErrScripted), nil
	case "slow", "stall":
		if !hasArg {
			return Step{}, fmt.Errorf("endpointtest: step %q: missing duration, want %s:1s", s, kind)
		}
		d, err := time.ParseDuration(arg)
		if err != nil || d < 0 {
			return Step{}, fmt.Errorf("endpointtest: step %q: bad duration %q", s, arg)
		}
		if kind == "slow" {
			return Slow(d, "ok"), nil
		}
		return Stall(d, "ok"), nil
	case "panic":
		if hasArg {
			return Panic(arg), nil
		}
		return Panic("endpointtest: scripted panic"), nil
	case "hang", "refused", "timeout":
		if hasArg {
			return Step{}, fmt.Errorf("endpointtest: step %q: %s takes no argument", s, kind)
		}
		switch kind {
		case "refused":
			return Refused(), nil
		case "timeout":
			return TimedOut(), nil
		}
		return Hang(), nil
	case "http":
		code, after, hasAfter := strings.Cut(arg, ":")
		status, err := strconv.Atoi(code)
		if !hasArg || err != nil || status < 400 || status > 599 || code != strconv.Itoa(status) {
			return Step{}, fmt.Errorf("endpointtest: step %q: want http:STATUS with a status from 400 to 599, as http:503", s)
		}
		var d time.Duration
		if hasAfter {
			if d, err = time.ParseDuration(after); err != nil || d <= 0 {
				return Step{}, fmt.Errorf("endpointtest: step %q: bad Retry-After %q, want a positive duration, as http:503:2s", s, after)
			}
		}
		return HTTP(status, d), nil
	}
	return Step{}, fmt.Errorf("endpointtest: unknown step %q (want ok, err, refused, timeout, http:STATUS, slow:D, stall:D, panic or hang)", s)
}

// Scripted is an endpoint that plays a script of steps, one per call, in
// order; once the script is used up it repeats its last step. The zero
// Scripted (no steps) always succeeds with "ok". Scripted is safe for
// concurrent use: concurrent calls take successive steps.
type Scripted struct {
	steps []Step
	calls atomic.Int64
}

// New returns a scripted endpoint playing steps.
func New(steps ...Step) *Scripted { return &Scripted{steps: steps} }

// Script returns a scripted endpoint playing the steps written as text (see
// [ParseStep]), for example Script("err", "err", "ok"). It panics on a step it
// cannot parse: scripts are written by the test's author.
func Script(specs ...string) *Scripted {
	steps := make([]Step, len(specs))
	for i, s := range specs {
		st, err := ParseStep(s)
		if err != nil {
			panic(err)
		}
		steps[i] = st
	}
	return New(steps...)
}

// Endpoint returns the script as a go-kit endpoint.
func (s *Scripted) Endpoint() endpoint.Endpoint { return s.Call }

// Call plays the next step. It is the endpoint itself, as a method value.
func (s *Scripted) Call(ctx context.Context, _ any) (any, error) {
	n := s.calls.Add(1)
	if len(s.steps) == 0 {
		return "ok", nil
	}
	i := int(min(n-1, int64(len(s.steps)-1)))
	return play(ctx, s.steps[i])
}

// Calls returns how many times the endpoint has been called.
func (s *Scripted) Calls() int { return int(s.calls.Load()) }

func play(ctx context.Context, st Step) (any, error) {
	switch st.Kind {
	case KindErr:
		return nil, st.Err
	case KindSlow:
		t := time.NewTimer(st.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return st.Response, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case KindStall:
		time.Sleep(st.Delay)
		return st.Response, nil
	case KindPanic:
		panic(st.Value)
	case KindHang:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return st.Response, nil
}

// Counter wraps an endpoint and counts its calls and outcomes. It is safe for
// concurrent use.
type Counter struct {
	next                     endpoint.Endpoint
	calls, errs, panics, inf atomic.Int64
	maxInFlight              atomic.Int64
	mu                       sync.Mutex
	last                     error
}

// Count returns a [Counter] wrapping next. It panics if next is nil.
func Count(next endpoint.Endpoint) *Counter {
	if next == nil {
		panic("endpointtest: Count: nil endpoint")
	}
	return &Counter{next: next}
}

// Endpoint returns the counting endpoint.
func (c *Counter) Endpoint() endpoint.Endpoint { return c.Call }

// Call calls the wrapped endpoint and counts the outcome. A panic is counted
// and passed on.
func (c *Counter) Call(ctx context.Context, req any) (resp any, err error) {
	c.calls.Add(1)
	n := c.inf.Add(1)
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	panicked := true
	defer func() {
		c.inf.Add(-1)
		if panicked {
			c.panics.Add(1)
		}
	}()
	resp, err = c.next(ctx, req)
	panicked = false
	if err != nil {
		c.errs.Add(1)
		c.mu.Lock()
		c.last = err
		c.mu.Unlock()
	}
	return resp, err
}

// Calls returns how many calls were made.
func (c *Counter) Calls() int { return int(c.calls.Load()) }

// Errors returns how many calls returned an error.
func (c *Counter) Errors() int { return int(c.errs.Load()) }

// Panics returns how many calls panicked.
func (c *Counter) Panics() int { return int(c.panics.Load()) }

// InFlight returns how many calls are running now.
func (c *Counter) InFlight() int { return int(c.inf.Load()) }

// MaxInFlight returns the largest number of calls that ran at once.
func (c *Counter) MaxInFlight() int { return int(c.maxInFlight.Load()) }

// LastErr returns the error of the most recent failed call, or nil.
func (c *Counter) LastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
