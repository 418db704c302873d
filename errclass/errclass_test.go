package errclass_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

// classifyStatusError is an HTTP client error carrying a status, as a go-kit
// HTTP client's decode function returns it (go-kit's StatusCoder).
type classifyStatusError struct{ code int }

func (e classifyStatusError) Error() string   { return fmt.Sprintf("http status %d", e.code) }
func (e classifyStatusError) StatusCode() int { return e.code }

// classifyRefused returns the error of a real dial to a loopback port that
// nothing listens on: listen, take the address, close the listener, dial.
func classifyRefused(t *testing.T) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", addr)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %s: connected, want connection refused", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	return err
}

// classifyConnPair returns both ends of a real loopback TCP connection,
// closed when the test ends.
func classifyConnPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// classifyReadTimeout returns the error of a real read past its deadline on
// a loopback connection.
func classifyReadTimeout(t *testing.T) error {
	t.Helper()
	client, _ := classifyConnPair(t)
	if err := client.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := client.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	return err
}

// classifyReset returns the error of a real read from a loopback connection
// the peer reset (closed with SO_LINGER 0).
func classifyReset(t *testing.T) error {
	t.Helper()
	client, server := classifyConnPair(t)
	if err := server.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	server.Close()
	if err := client.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err := client.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want connection reset", err)
	}
	return err
}

// classifyUnexpectedEOF returns the error of a real io.ReadFull from a
// loopback connection the peer closed in mid-message.
func classifyUnexpectedEOF(t *testing.T) error {
	t.Helper()
	client, server := classifyConnPair(t)
	if _, err := server.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	server.Close()
	_, err := io.ReadFull(client, make([]byte, 4))
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("read full: %v, want io.ErrUnexpectedEOF", err)
	}
	return fmt.Errorf("decode response: %w", err)
}

// classifyUseClosed returns the error of a real read on a connection this
// side closed.
func classifyUseClosed(t *testing.T) error {
	t.Helper()
	client, _ := classifyConnPair(t)
	client.Close()
	_, err := client.Read(make([]byte, 1))
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read: %v, want net.ErrClosed", err)
	}
	return err
}

// classifyDial returns the error of a real dial of addr with ctx.
func classifyDial(t *testing.T, ctx context.Context, addr string) error {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
		t.Fatalf("dial %q: connected, want an error", addr)
	}
	return err
}

func TestSetBuiltins(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	dnsNotFound := &net.DNSError{Err: "no such host", Name: "api.invalid", IsNotFound: true}
	dnsTemporary := &net.DNSError{Err: "server misbehaving", Name: "api.example", Server: "10.0.0.1:53", IsTemporary: true}
	dnsTimeout := &net.DNSError{Err: "i/o timeout", Name: "api.example", Server: "10.0.0.1:53", IsTimeout: true}
	refused := classifyRefused(t)

	type classes struct{ timeout, connection, http5xx, http429 bool }
	tests := []struct {
		name string
		err  error
		want classes
	}{
		{name: "nil", err: nil},
		{name: "plain error", err: errors.New("bad request")},
		{name: "bare io.EOF", err: io.EOF},
		{name: "context.Canceled", err: context.Canceled},

		{name: "real read past deadline", err: classifyReadTimeout(t), want: classes{timeout: true}},
		{name: "context.DeadlineExceeded", err: context.DeadlineExceeded, want: classes{timeout: true}},
		{name: "middleware.ErrTimeout", err: middleware.ErrTimeout, want: classes{timeout: true}},
		{name: "wrapped ErrTimeout", err: fmt.Errorf("attempt: %w", middleware.ErrTimeout), want: classes{timeout: true}},
		{name: "os.ErrDeadlineExceeded", err: os.ErrDeadlineExceeded, want: classes{timeout: true}},
		{name: "ETIMEDOUT", err: os.NewSyscallError("read", syscall.ETIMEDOUT), want: classes{timeout: true}},
		{name: "joined with timeout", err: errors.Join(errors.New("first"), fmt.Errorf("second: %w", os.ErrDeadlineExceeded)), want: classes{timeout: true}},

		{name: "real refused dial", err: refused, want: classes{connection: true}},
		{name: "wrapped refused dial", err: fmt.Errorf("call embed: %w", refused), want: classes{connection: true}},
		{name: "joined refused dial", err: errors.Join(errors.New("close"), refused), want: classes{connection: true}},
		{name: "RetryError around refused dial", err: &middleware.RetryError{Attempts: 3, Err: refused}, want: classes{connection: true}},
		{name: "RetryError stopped by deadline", err: &middleware.RetryError{Attempts: 2, Err: refused, Cause: context.DeadlineExceeded}, want: classes{connection: true, timeout: true}},
		{name: "real reset by peer", err: classifyReset(t), want: classes{connection: true}},
		{name: "real unexpected EOF", err: classifyUnexpectedEOF(t), want: classes{connection: true}},
		{name: "real use of closed connection", err: classifyUseClosed(t), want: classes{connection: true}},
		{name: "broken pipe", err: &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, want: classes{connection: true}},
		{name: "connection aborted", err: syscall.ECONNABORTED, want: classes{connection: true}},
		{name: "DNS temporary", err: dnsTemporary, want: classes{connection: true}},
		{name: "DNS timeout", err: dnsTimeout, want: classes{connection: true, timeout: true}},
		{name: "DNS not found", err: dnsNotFound},
		{name: "dial DNS not found", err: &net.OpError{Op: "dial", Net: "tcp", Err: dnsNotFound}},
		{name: "dial DNS temporary", err: &net.OpError{Op: "dial", Net: "tcp", Err: dnsTemporary}, want: classes{connection: true}},
		{name: "dial unreachable", err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, want: classes{connection: true}},
		{name: "dial timed out", err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, want: classes{connection: true, timeout: true}},
		{name: "real dial canceled", err: classifyDial(t, canceled, refused.(*net.OpError).Addr.String())},
		{name: "real dial missing port", err: classifyDial(t, context.Background(), "127.0.0.1")},
		{name: "read error not dial", err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.EHOSTUNREACH)}},

		{name: "status 500", err: classifyStatusError{500}, want: classes{http5xx: true}},
		{name: "status 503", err: classifyStatusError{503}, want: classes{http5xx: true}},
		{name: "status 599", err: classifyStatusError{599}, want: classes{http5xx: true}},
		{name: "status 600", err: classifyStatusError{600}},
		{name: "status 499", err: classifyStatusError{499}},
		{name: "status 429", err: classifyStatusError{429}, want: classes{http429: true}},
		{name: "status 404", err: classifyStatusError{404}},
		{name: "wrapped status 503", err: fmt.Errorf("decode: %w", classifyStatusError{503}), want: classes{http5xx: true}},
		{name: "RetryError around 429", err: &middleware.RetryError{Attempts: 3, Err: classifyStatusError{429}}, want: classes{http429: true}},
		{name: "outermost status wins", err: fmt.Errorf("%w: %w", classifyStatusError{404}, classifyStatusError{503})},
	}
	var reg errclass.Set
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := []struct {
				class string
				fn    func(error) bool
				want  bool
			}{
				{"timeout", errclass.Timeout, tt.want.timeout},
				{"connection", errclass.Connection, tt.want.connection},
				{"http-5xx", errclass.HTTP5xx, tt.want.http5xx},
				{"http-429", errclass.HTTP429, tt.want.http429},
			}
			for _, c := range checks {
				if got := c.fn(tt.err); got != c.want {
					t.Errorf("%s(%v) = %v, want %v", c.class, tt.err, got, c.want)
				}
				fn, ok := reg.Lookup(c.class)
				if !ok {
					t.Fatalf("Lookup(%q) found nothing", c.class)
				}
				if got := fn(tt.err); got != c.want {
					t.Errorf("Lookup(%q)(%v) = %v, want %v", c.class, tt.err, got, c.want)
				}
			}
		})
	}
}

func TestSetMatch(t *testing.T) {
	errCustom := errors.New("custom")
	reg := &errclass.Set{}
	if err := reg.Register("custom", func(err error) bool { return errors.Is(err, errCustom) }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		names []string
		err   error
		want  bool
	}{
		{name: "one class, member", names: []string{"connection"}, err: syscall.ECONNRESET, want: true},
		{name: "one class, not member", names: []string{"connection"}, err: context.DeadlineExceeded, want: false},
		{name: "two classes, second", names: []string{"connection", "timeout"}, err: context.DeadlineExceeded, want: true},
		{name: "two classes, neither", names: []string{"connection", "timeout"}, err: classifyStatusError{503}, want: false},
		{name: "duplicate names", names: []string{"http-5xx", "http-5xx"}, err: classifyStatusError{502}, want: true},
		{name: "registered class", names: []string{"timeout", "custom"}, err: fmt.Errorf("x: %w", errCustom), want: true},
		{name: "nil error", names: []string{"connection", "timeout", "http-5xx", "http-429", "custom"}, err: nil, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, err := reg.Match(tt.names...)
			if err != nil {
				t.Fatalf("Match(%q): %v", tt.names, err)
			}
			if got := match(tt.err); got != tt.want {
				t.Errorf("Match(%q)(%v) = %v, want %v", tt.names, tt.err, got, tt.want)
			}
		})
	}
}

func TestSetMatchUnknown(t *testing.T) {
	reg := &errclass.Set{}
	tests := []struct {
		name      string
		names     []string
		wantNamed []string
	}{
		{name: "no names", names: nil},
		{name: "typo", names: []string{"connection", "timout"}, wantNamed: []string{`"timout"`, "connection, http-429, http-5xx, timeout"}},
		{name: "two unknown", names: []string{"conection", "timeout", "5xx"}, wantNamed: []string{`"conection"`, `"5xx"`}},
		{name: "case matters", names: []string{"Timeout"}, wantNamed: []string{`"Timeout"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			match, err := reg.Match(tt.names...)
			if !errors.Is(err, errclass.ErrUnknownClass) {
				t.Fatalf("Match(%q) error = %v, want ErrUnknownClass", tt.names, err)
			}
			if match != nil {
				t.Errorf("Match(%q) returned a predicate with its error", tt.names)
			}
			for _, s := range tt.wantNamed {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %s", err, s)
				}
			}
		})
	}
}

func TestSetRegisterInvalid(t *testing.T) {
	match := func(error) bool { return true }
	tests := []struct {
		name      string
		class     string
		match     func(error) bool
		wantNamed string
	}{
		{name: "empty name", class: "", match: match, wantNamed: "empty"},
		{name: "space", class: "my class", match: match, wantNamed: `"my class"`},
		{name: "upper case", class: "Conn", match: match, wantNamed: `"Conn"`},
		{name: "comma", class: "a,b", match: match, wantNamed: `"a,b"`},
		{name: "nil match", class: "mine", match: nil, wantNamed: `"mine"`},
		{name: "built-in timeout", class: "timeout", match: match, wantNamed: `"timeout"`},
		{name: "built-in connection", class: "connection", match: match, wantNamed: `"connection"`},
		{name: "duplicate", class: "taken", match: match, wantNamed: `"taken"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := &errclass.Set{}
			if err := reg.Register("taken", match); err != nil {
				t.Fatalf("Register(taken): %v", err)
			}
			before := reg.Names()
			err := reg.Register(tt.class, tt.match)
			if !errors.Is(err, errclass.ErrInvalidClass) {
				t.Fatalf("Register(%q) = %v, want ErrInvalidClass", tt.class, err)
			}
			if !strings.Contains(err.Error(), tt.wantNamed) {
				t.Errorf("error %q does not name %s", err, tt.wantNamed)
			}
			if got := reg.Names(); !slices.Equal(got, before) {
				t.Errorf("Names() = %q after a failed Register, want %q", got, before)
			}
			if fn, _ := reg.Lookup("timeout"); fn == nil || !fn(context.DeadlineExceeded) {
				t.Error(`built-in "timeout" changed after a failed Register`)
			}
		})
	}
}

func TestSetRegisterLookupNames(t *testing.T) {
	errQuota := errors.New("quota")
	reg := &errclass.Set{}
	before, err := reg.Match("timeout")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"quota", "db.deadlock", "grpc_unavailable", "z-9"} {
		if err := reg.Register(name, func(err error) bool { return errors.Is(err, errQuota) }); err != nil {
			t.Fatalf("Register(%q): %v", name, err)
		}
	}
	if fn, ok := reg.Lookup("quota"); !ok || !fn(fmt.Errorf("x: %w", errQuota)) {
		t.Errorf(`Lookup("quota") = %v, %v, want the registered class`, fn != nil, ok)
	}
	if fn, ok := reg.Lookup("nope"); ok || fn != nil {
		t.Errorf(`Lookup("nope") = %v, %v, want nil, false`, fn != nil, ok)
	}
	want := []string{"connection", "db.deadlock", "grpc_unavailable", "http-429", "http-5xx", "quota", "timeout", "z-9"}
	if got := reg.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got := before(errQuota); got {
		t.Errorf("predicate made before Register matched the new class")
	}
	// Names returns a copy.
	reg.Names()[0] = "changed"
	if got := reg.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q after changing an earlier result, want %q", got, want)
	}
}

func TestSetNilAndZero(t *testing.T) {
	builtins := []string{"connection", "http-429", "http-5xx", "timeout"}
	tests := []struct {
		name string
		reg  *errclass.Set
	}{
		{name: "nil", reg: nil},
		{name: "zero", reg: &errclass.Set{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.reg.Names(); !slices.Equal(got, builtins) {
				t.Errorf("Names() = %q, want %q", got, builtins)
			}
			match, err := tt.reg.Match("connection", "timeout")
			if err != nil {
				t.Fatal(err)
			}
			if !match(syscall.ECONNREFUSED) || !match(context.DeadlineExceeded) || match(io.EOF) {
				t.Error("Match(connection, timeout) does not classify as the built-ins do")
			}
			if _, ok := tt.reg.Lookup("custom"); ok {
				t.Error(`Lookup("custom") found a class`)
			}
		})
	}
}

func TestSetConcurrent(t *testing.T) {
	reg := &errclass.Set{}
	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				name := fmt.Sprintf("w%d-%d", w, i)
				if err := reg.Register(name, errclass.Connection); err != nil {
					t.Errorf("Register(%q): %v", name, err)
				}
				if _, ok := reg.Lookup(name); !ok {
					t.Errorf("Lookup(%q) found nothing after Register", name)
				}
				if match, err := reg.Match("timeout", name); err != nil || !match(syscall.ECONNRESET) {
					t.Errorf("Match(timeout, %q) = %v", name, err)
				}
				_ = reg.Names()
			}
		})
		// Everyone races to register the same name: exactly one wins.
		wg.Go(func() { _ = reg.Register("shared", errclass.Timeout) })
	}
	wg.Wait()
	if got, want := len(reg.Names()), 4+workers*perWorker+1; got != want {
		t.Errorf("len(Names()) = %d, want %d", got, want)
	}
}

// Retry with RetryIf from named classes retries a real refused connection
// until the attempts run out and returns a 404 at once.
func TestSetWithRetry(t *testing.T) {
	var reg errclass.Set
	retryIf, err := reg.Match("connection", "timeout", "http-5xx")
	if err != nil {
		t.Fatal(err)
	}
	retry := middleware.Retry(middleware.RetryConfig{
		MaxAttempts: 4,
		NoDelay:     true,
		RetryIf:     retryIf,
		Observer:    middleware.ObserverFunc(func(context.Context, middleware.Event) {}),
	})
	tests := []struct {
		name      string
		err       error
		wantCalls int
	}{
		{name: "refused", err: classifyRefused(t), wantCalls: 4},
		{name: "read timeout", err: classifyReadTimeout(t), wantCalls: 4},
		{name: "status 503", err: classifyStatusError{503}, wantCalls: 4},
		{name: "status 404", err: classifyStatusError{404}, wantCalls: 1},
		{name: "status 429 not named", err: classifyStatusError{429}, wantCalls: 1},
		{name: "plain", err: errors.New("bad request"), wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			ep := retry(func(context.Context, any) (any, error) {
				calls++
				return nil, tt.err
			})
			_, err := ep(context.Background(), nil)
			if !errors.Is(err, tt.err) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
		})
	}
}

// mustMatch is Set.Match for names known to be classes.
func mustMatch(s *errclass.Set, names ...string) func(error) bool {
	f, err := s.Match(names...)
	if err != nil {
		panic(err)
	}
	return f
}

// TestDescribe: the predicates this package makes say what they match, for
// a stack's explanation; any other predicate is never called and says "".
func TestDescribe(t *testing.T) {
	var set errclass.Set
	matched, err := set.Match("connection", "timeout")
	if err != nil {
		t.Fatal(err)
	}
	errBusy := errors.New("busy")
	called := false
	user := func(error) bool { called = true; return true }
	tests := []struct {
		name string
		pred func(error) bool
		want string
	}{
		{"builtin", errclass.Timeout, "timeout"},
		{"Set.Match", matched, "connection, timeout"},
		{"Any", errclass.Any(errclass.Connection, errclass.HTTP5xx), "connection, http-5xx"},
		{"Is", errclass.Is(errBusy), "busy"},
		{"user predicate", user, ""},
		{"nil", nil, ""},
	}
	for _, tt := range tests {
		if got := errclass.Describe(tt.pred); got != tt.want {
			t.Errorf("%s: Describe = %q, want %q", tt.name, got, tt.want)
		}
	}
	if called {
		t.Error("Describe called a user predicate")
	}
}
