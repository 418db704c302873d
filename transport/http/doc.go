// Package http maps the toolkit's errors to and from HTTP, for go-kit's
// transport/http: [DecodeHTTPError] turns an error response into an
// [*HTTPError] (with its status, so that errclass.HTTP5xx and
// errclass.HTTP429 classify it, and its Retry-After header, which Retry
// honours), and [EncodeHTTPError] writes the toolkit's rejections with the
// status a client expects (503 for an open circuit or a full bulkhead, 429
// for a rate limit, 504 for a timeout) and a Retry-After header.
//
// Its name is that of go-kit's transport/http; import it under a name of
// your own where both are used:
//
//	import resiliencehttp "github.com/resiliencekit/resilience/transport/http"
package http
