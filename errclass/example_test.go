package errclass_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
)

// classifyHTTPError is what a go-kit HTTP client's decode function might
// return for a response it cannot use: an error with go-kit's
// StatusCode() int.
type classifyHTTPError struct{ status int }

func (e classifyHTTPError) Error() string   { return fmt.Sprintf("http %d", e.status) }
func (e classifyHTTPError) StatusCode() int { return e.status }

// The guide's "retry only specific exceptions" with named classes:
// connection and timeout errors are retried, a 404 is returned at once.
func ExampleSet_Match() {
	var classes errclass.Set // the built-in classes
	transient, err := classes.Match("connection", "timeout")
	if err != nil {
		fmt.Println(err)
		return
	}
	retry := middleware.Retry(middleware.RetryConfig{
		MaxAttempts: 3,
		NoDelay:     true,
		RetryIf:     transient,
		OnRetry: func(err error, attempt int) {
			fmt.Printf("attempt %d failed: %v\n", attempt, err)
		},
		Observer: middleware.ObserverFunc(func(context.Context, middleware.Event) {}),
	})

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	calls := 0
	flaky := retry(func(context.Context, any) (any, error) {
		switch calls++; calls {
		case 1:
			return nil, refused
		case 2:
			return nil, fmt.Errorf("read body: %w", os.ErrDeadlineExceeded)
		}
		return "embedding", nil
	})
	resp, err := flaky(context.Background(), nil)
	fmt.Println(resp, err)

	calls = 0
	notFound := retry(func(context.Context, any) (any, error) {
		calls++
		return nil, classifyHTTPError{404}
	})
	_, err = notFound(context.Background(), nil)
	fmt.Println(err, "after", calls, "call")

	_, err = classes.Match("connection", "timout")
	fmt.Println(errors.Is(err, errclass.ErrUnknownClass), err)
	// Output:
	// attempt 1 failed: dial tcp: connect: connection refused
	// attempt 2 failed: read body: i/o timeout
	// embedding <nil>
	// http 404 after 1 call
	// true errclass: unknown error class: "timout" (known: connection, http-429, http-5xx, timeout)
}

// A class of one's own, registered by name so that a policy file can name
// it beside the built-ins.
func ExampleSet_Register() {
	errQuota := errors.New("quota exceeded")
	classes := &errclass.Set{}
	if err := classes.Register("quota", func(err error) bool { return errors.Is(err, errQuota) }); err != nil {
		fmt.Println(err)
	}
	fmt.Println(classes.Names())

	throttled, err := classes.Match("quota", "http-429")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(throttled(fmt.Errorf("embed: %w", errQuota)), throttled(classifyHTTPError{429}), throttled(classifyHTTPError{500}))

	err = classes.Register("timeout", func(error) bool { return false })
	fmt.Println(err)
	// Output:
	// [connection http-429 http-5xx quota timeout]
	// true true false
	// errclass: invalid error class: "timeout": already registered (built in)
}

// The built-in classes applied to real network errors on loopback.
func ExampleConnection() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more

	_, err = net.Dial("tcp", addr)
	fmt.Println("refused: connection", errclass.Connection(err), "timeout", errclass.Timeout(err))

	err = fmt.Errorf("decode: %w", io.ErrUnexpectedEOF)
	fmt.Println("cut short: connection", errclass.Connection(err), "timeout", errclass.Timeout(err))

	fmt.Println("end of stream: connection", errclass.Connection(io.EOF))

	err = &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "api.invalid", IsNotFound: true}}
	fmt.Println("no such host: connection", errclass.Connection(err))
	// Output:
	// refused: connection true timeout false
	// cut short: connection true timeout false
	// end of stream: connection false
	// no such host: connection false
}

// A go-kit HTTP client error that carries its status is classified by it.
func ExampleHTTP5xx() {
	for _, status := range []int{500, 503, 429, 404} {
		err := fmt.Errorf("decode response: %w", classifyHTTPError{status})
		fmt.Println(status, "5xx", errclass.HTTP5xx(err), "429", errclass.HTTP429(err))
	}
	// Output:
	// 500 5xx true 429 false
	// 503 5xx true 429 false
	// 429 5xx false 429 true
	// 404 5xx false 429 false
}
