package http_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/errclass"
	"github.com/resiliencekit/resilience/middleware"
	resiliencehttp "github.com/resiliencekit/resilience/transport/http"
)

// A go-kit client decoder turns an upstream's 503 with Retry-After into an
// *HTTPError: the "http-5xx" class matches it and the retry layer waits the
// delay it asks for.
func ExampleDecodeHTTPError() {
	resp := &http.Response{
		StatusCode: http.StatusServiceUnavailable,
		Header:     http.Header{"Retry-After": {"2"}},
		Body:       io.NopCloser(strings.NewReader("overloaded")),
	}
	err := resiliencehttp.DecodeHTTPError(resp)
	fmt.Println(err)
	fmt.Println(errclass.HTTP5xx(err))
	if ra, ok := errors.AsType[*resiliencehttp.HTTPError](err); ok {
		fmt.Println(ra.RetryAfter())
	}
	// Output:
	// http 503 Service Unavailable: overloaded
	// true
	// 2s
}

// A go-kit server's ErrorEncoder writes the toolkit's rejections with the
// status and Retry-After header a client can act on.
func ExampleEncodeHTTPError() {
	rec := httptest.NewRecorder()
	err := &middleware.RateLimitError{Delay: 1500 * time.Millisecond}
	resiliencehttp.EncodeHTTPError(context.Background(), err, rec)
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	// Output:
	// 429 2
}

// Observers fans each event out to several observers: here a log line and a
// count.
func ExampleObservers() {
	retries := 0
	count := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if e.Kind == middleware.EventRetry {
			retries++
		}
	})
	show := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		fmt.Println(e.Kind, e.Attempt)
	})
	calls := 0
	flaky := func(context.Context, any) (any, error) {
		if calls++; calls < 3 {
			return nil, errors.New("flaky")
		}
		return "ok", nil
	}
	ep := middleware.Retry(middleware.RetryConfig{NoDelay: true, Observer: middleware.Observers(show, count)})(flaky)
	fmt.Println(ep(context.Background(), nil))
	fmt.Println("retries counted:", retries)
	// Output:
	// retry 1
	// retry 2
	// ok <nil>
	// retries counted: 2
}
