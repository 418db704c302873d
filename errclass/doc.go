// Package errclass sorts errors into classes, as predicates over errors for
// the XIf fields of the middleware configs (RetryIf, FailIf, FallbackIf):
//
//   - [Timeout]: a deadline passed (context.DeadlineExceeded, a net.Error
//     that timed out, ETIMEDOUT);
//   - [Connection]: the connection to the other side failed (refused,
//     reset, a dial that failed, a peer that closed mid-message);
//   - [HTTP5xx] and [HTTP429]: an error carrying an HTTP status, by go-kit's
//     StatusCoder convention.
//
// [Any] and [Is] combine predicates and errors. A [Set] names classes for
// configuration files: the built-ins as "timeout", "connection",
// "http-5xx" and "http-429", and the classes a program registers.
//
//	retryIf := errclass.Any(errclass.Connection, errclass.Timeout, errclass.Is(ErrBusy))
package errclass
