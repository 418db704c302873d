package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// HTTPError is an error response from an HTTP service, as [DecodeHTTPError]
// reads it. Its StatusCode method makes the error classes errclass.HTTP5xx
// and errclass.HTTP429 match it, and its RetryAfter method
// carries the response's Retry-After header to the retry layer.
type HTTPError struct {
	// Status is the response's status code.
	Status int
	// Delay is the response's Retry-After header as a duration (seconds,
	// or an HTTP date measured from the time of decoding); 0 when absent.
	Delay time.Duration
	// Body is the start of the response body (at most 512 bytes).
	Body string
}

// Error implements error: "http 503 Service Unavailable: body".
func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("http %d %s", e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// StatusCode returns the response's status code (go-kit's StatusCoder).
func (e *HTTPError) StatusCode() int { return e.Status }

// RetryAfter returns the delay the service asked for in Retry-After.
func (e *HTTPError) RetryAfter() time.Duration { return e.Delay }

// maxErrorBody bounds how much of an error response DecodeHTTPError reads.
const maxErrorBody = 512

// DecodeHTTPError returns nil for a response with a status below 400, and
// otherwise an [*HTTPError] with the status, the Retry-After header and the
// start of the body. Call it first in a go-kit httptransport client's
// DecodeResponseFunc:
//
//	func decode(ctx context.Context, r *http.Response) (any, error) {
//		if err := http.DecodeHTTPError(r); err != nil {
//			return nil, err
//		}
//		...
//	}
func DecodeHTTPError(r *http.Response) error {
	if r.StatusCode < 400 {
		return nil
	}
	e := &HTTPError{Status: r.StatusCode, Delay: parseRetryAfter(r.Header.Get("Retry-After"), time.Now())}
	if r.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(r.Body, maxErrorBody))
		e.Body = strings.TrimSpace(string(b))
	}
	return e
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date.
// A missing or malformed value, or a date in the past, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// EncodeHTTPError writes err as an HTTP error response; it is a go-kit
// httptransport ErrorEncoder (pass it with httptransport.ServerErrorEncoder).
// The status says what happened: 503 for an open circuit, a full bulkhead,
// too many abandoned calls, an adaptive limit's or a throttle's rejection, 429 for a rate limit, 504 for a timeout, the
// status of an error with a StatusCode method (an [*HTTPError] from
// upstream, go-kit's StatusCoder), and 500 otherwise. When the error carries a
// delay (a RetryAfter() time.Duration method, as [middleware.CircuitOpenError],
// [middleware.RateLimitError] and [HTTPError] have) it is written as a Retry-After header in whole
// seconds, rounded up. The body is the error's text, as go-kit's default
// encoder writes it.
func EncodeHTTPError(_ context.Context, err error, w http.ResponseWriter) {
	code := HTTPStatus(err)
	if d, ok := retryAfter(err); ok && d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if err != nil {
		io.WriteString(w, err.Error())
	}
}

// HTTPStatus returns the status [EncodeHTTPError] writes for err.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, middleware.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, middleware.ErrKeyRejected) && errors.Is(err, registry.ErrInvalidName):
		return http.StatusBadRequest // the request's key (a tenant, a host) is not a valid name
	case errors.Is(err, middleware.ErrCircuitOpen), errors.Is(err, middleware.ErrBulkheadFull),
		errors.Is(err, middleware.ErrLimited), errors.Is(err, middleware.ErrThrottled),
		errors.Is(err, middleware.ErrKeyRejected):
		return http.StatusServiceUnavailable
	case errors.Is(err, middleware.ErrTimeout):
		return http.StatusGatewayTimeout
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		if c := sc.StatusCode(); c >= 400 && c <= 599 {
			return c
		}
	}
	return http.StatusInternalServerError
}

// retryAfter returns the hint of the first error in err's tree with a
// RetryAfter() time.Duration method.
func retryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter(), true
	}
	return 0, false
}
