// Package callctx holds the one rule that decides whether a call's outcome is
// a verdict on the service: a call whose caller has gone is never one, and a
// call cut by a deadline of the library's own always is.
//
// "The caller has gone" means the context the layer was given is done and its
// cause ([context.Cause]) is not a deadline a layer of this module set with
// [Deadline]. That covers every way a caller leaves: cancel, cancel with a
// cause (context.WithCancelCause, errgroup.WithContext), its own deadline,
// and its own deadline with a cause (context.WithTimeoutCause), whatever
// error the endpoint then returns. A deadline of the library's own (a stack's
// Budget, a Timeout layer) carries a [*Deadline] as its cause, which a user
// cannot make by accident: its type is this internal package's.
package callctx

import (
	"context"
	"errors"
)

// Deadline is the cause a layer of this module gives the deadline it sets
// (context.WithTimeoutCause(ctx, d, own)), so that the layers beneath can
// tell the library's own deadline from the caller's. It matches Err with
// [errors.Is] (middleware.ErrTimeout, and through it DeadlineExceeded). Make
// one per layer, at construction; it is never modified.
type Deadline struct{ Err error }

// Error returns Err's message.
func (d *Deadline) Error() string { return d.Err.Error() }

// Unwrap returns Err.
func (d *Deadline) Unwrap() error { return d.Err }

// Own reports whether ctx is done because a deadline of the library's own
// ran out.
func Own(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	_, ok := context.Cause(ctx).(*Deadline)
	return ok
}

// Gone reports whether the caller of a call made with ctx has gone: ctx is
// done, and not by a deadline of the library's own.
func Gone(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	_, own := context.Cause(ctx).(*Deadline)
	return !own
}

// Neutral reports whether a call made with ctx that failed with err is no
// verdict on the service: its caller has gone ([Gone]), or, its context still
// alive, err is a cancellation ([context.Canceled]: someone gave up on the
// call, not the service on the caller). A call cut by a deadline of the
// library's own is never neutral.
func Neutral(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		_, own := context.Cause(ctx).(*Deadline)
		return !own
	}
	return errors.Is(err, context.Canceled)
}
