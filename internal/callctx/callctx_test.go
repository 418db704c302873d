package callctx_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/internal/callctx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errOurs   = errors.New("ours")
	errCustom = errors.New("custom")
)

// TestRule sweeps the ways a context can end against the three questions:
// Gone, Own and Neutral.
func TestRule(t *testing.T) {
	own := &callctx.Deadline{Err: errOurs}
	tests := []struct {
		name              string
		ctx               func(*testing.T, context.Context) context.Context
		err               error
		gone, mine, neutr bool
	}{
		{name: "alive", ctx: func(t *testing.T, c context.Context) context.Context { return c }, err: errCustom},
		{name: "alive, Canceled error", ctx: func(t *testing.T, c context.Context) context.Context { return c }, err: context.Canceled, neutr: true},
		{name: "cancel", err: errCustom, gone: true, neutr: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancel := context.WithCancel(c)
			cancel()
			return c
		}},
		{name: "cancel cause", err: errCustom, gone: true, neutr: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancel := context.WithCancelCause(c)
			cancel(errCustom)
			return c
		}},
		{name: "caller deadline", err: context.DeadlineExceeded, gone: true, neutr: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancel := context.WithTimeout(c, time.Second)
			t.Cleanup(cancel)
			time.Sleep(2 * time.Second)
			return c
		}},
		{name: "caller deadline with our sentinel as cause", err: errOurs, gone: true, neutr: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancel := context.WithTimeoutCause(c, time.Second, errOurs)
			t.Cleanup(cancel)
			time.Sleep(2 * time.Second)
			return c
		}},
		{name: "our deadline", err: context.DeadlineExceeded, mine: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancel := context.WithTimeoutCause(c, time.Second, own)
			t.Cleanup(cancel)
			time.Sleep(2 * time.Second)
			return c
		}},
		{name: "our deadline, Canceled error", err: context.Canceled, mine: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancel := context.WithTimeoutCause(c, time.Second, own)
			t.Cleanup(cancel)
			time.Sleep(2 * time.Second)
			return c
		}},
		{name: "caller cancels under our later deadline", err: errCustom, gone: true, neutr: true, ctx: func(t *testing.T, c context.Context) context.Context {
			c, cancelCaller := context.WithCancel(c)
			c, cancel := context.WithTimeoutCause(c, time.Minute, own)
			t.Cleanup(cancel)
			cancelCaller()
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := tt.ctx(t, t.Context())
				if got := callctx.Gone(ctx); got != tt.gone {
					t.Errorf("Gone = %v, want %v", got, tt.gone)
				}
				if got := callctx.Own(ctx); got != tt.mine {
					t.Errorf("Own = %v, want %v", got, tt.mine)
				}
				if got := callctx.Neutral(ctx, tt.err); got != tt.neutr {
					t.Errorf("Neutral = %v, want %v", got, tt.neutr)
				}
			})
		})
	}
}

func TestDeadlineMatchesItsErr(t *testing.T) {
	d := &callctx.Deadline{Err: errOurs}
	if !errors.Is(d, errOurs) || d.Error() != errOurs.Error() {
		t.Errorf("Deadline = %v, want it to match and read as %v", d, errOurs)
	}
}
