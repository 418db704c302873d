package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

func always(context.Context, any) bool { return true }

// attempts is an endpoint whose n-th call (from 1) takes took[n-1] and
// returns errs[n-1]; it records which calls saw their context canceled.
type attempts struct {
	took     []time.Duration
	errs     []error
	n        atomic.Int32
	canceled sync.Map // attempt -> true
}

func (a *attempts) call(ctx context.Context, _ any) (any, error) {
	n := int(a.n.Add(1))
	d, err := time.Hour, error(nil)
	if n <= len(a.took) {
		d = a.took[n-1]
	}
	if n <= len(a.errs) {
		err = a.errs[n-1]
	}
	select {
	case <-time.After(d):
		if err != nil {
			return nil, err
		}
		return fmt.Sprintf("attempt %d", n), nil
	case <-ctx.Done():
		a.canceled.Store(n, true)
		return nil, ctx.Err()
	}
}

func TestHedge(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name      string
		cfg       middleware.HedgeConfig
		took      []time.Duration
		errs      []error
		want      string
		wantErr   error
		wantAt    time.Duration
		wantCalls int
		canceled  []int
	}{
		{name: "fast first attempt: no hedge", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond},
			took: []time.Duration{10 * time.Millisecond}, want: "attempt 1", wantAt: 10 * time.Millisecond, wantCalls: 1},
		{name: "slow first attempt beaten by the hedge", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond},
			took: []time.Duration{time.Second, 10 * time.Millisecond}, want: "attempt 2", wantAt: 60 * time.Millisecond, wantCalls: 2, canceled: []int{1}},
		{name: "two hedges, one per delay", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond, MaxHedges: 2},
			took: []time.Duration{time.Second, time.Second, 10 * time.Millisecond}, want: "attempt 3", wantAt: 110 * time.Millisecond, wantCalls: 3, canceled: []int{1, 2}},
		{name: "a failure sends the next hedge at once", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond},
			took: []time.Duration{5 * time.Millisecond, 10 * time.Millisecond}, errs: []error{boom}, want: "attempt 2", wantAt: 15 * time.Millisecond, wantCalls: 2},
		{name: "every attempt fails: the last failure", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond, MaxHedges: 2},
			took: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}, errs: []error{errors.New("first"), errors.New("second"), boom},
			wantErr: boom, wantAt: 15 * time.Millisecond, wantCalls: 3},
		{name: "a rejection ends the call", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond},
			took: []time.Duration{5 * time.Millisecond}, errs: []error{middleware.ErrThrottled}, wantErr: middleware.ErrThrottled, wantAt: 5 * time.Millisecond, wantCalls: 1},
		{name: "not idempotent: once", cfg: middleware.HedgeConfig{Delay: 50 * time.Millisecond, Idempotent: func(context.Context, any) bool { return false }},
			took: []time.Duration{time.Second, time.Millisecond}, want: "attempt 1", wantAt: time.Second, wantCalls: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a := &attempts{took: tt.took, errs: tt.errs}
				cfg := tt.cfg
				if cfg.Idempotent == nil {
					cfg.Idempotent = always
				}
				cfg.Observer = quiet
				start := time.Now()
				resp, err := middleware.Hedge(cfg)(a.call)(context.Background(), nil)
				at := time.Since(start)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("err = %v, want %v", err, tt.wantErr)
					}
				} else if err != nil || resp != tt.want {
					t.Errorf("got %v, %v; want %q", resp, err, tt.want)
				}
				if at != tt.wantAt {
					t.Errorf("returned after %v, want %v", at, tt.wantAt)
				}
				synctest.Wait() // the losers see their cancellation
				if got := int(a.n.Load()); got != tt.wantCalls {
					t.Errorf("%d attempts, want %d", got, tt.wantCalls)
				}
				for _, n := range tt.canceled {
					if _, ok := a.canceled.Load(n); !ok {
						t.Errorf("attempt %d was not canceled", n)
					}
				}
			})
		})
	}
}

// TestHedgeCallerGone checks that a caller who leaves gets its context's
// error at once and that every attempt is canceled (goleak in TestMain
// fails the package if one is left running).
func TestHedgeCallerGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &attempts{}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
		defer cancel()
		_, err := middleware.Hedge(middleware.HedgeConfig{Delay: 50 * time.Millisecond, MaxHedges: 3, Idempotent: always, Observer: quiet})(a.call)(ctx, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the caller's deadline", err)
		}
		synctest.Wait()
		if n := a.n.Load(); n != 3 {
			t.Errorf("%d attempts by 120ms with a 50ms delay, want 3", n)
		}
		for n := 1; n <= 3; n++ {
			if _, ok := a.canceled.Load(n); !ok {
				t.Errorf("attempt %d was not canceled", n)
			}
		}
	})
}

// TestHedgePanic checks that a panic in an attempt (on the layer's own
// goroutine) reaches the caller's goroutine, the other attempts canceled.
func TestHedgePanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var canceled atomic.Bool
		ep := func(ctx context.Context, _ any) (any, error) {
			if calls.Add(1) == 2 {
				panic("hedge boom")
			}
			<-ctx.Done()
			canceled.Store(true)
			return nil, ctx.Err()
		}
		func() {
			defer func() {
				if r := recover(); r != "hedge boom" {
					t.Errorf("recovered %v, want the attempt's panic", r)
				}
			}()
			_, _ = middleware.Hedge(middleware.HedgeConfig{Delay: 10 * time.Millisecond, Idempotent: always, Observer: quiet})(ep)(context.Background(), nil)
			t.Error("no panic")
		}()
		synctest.Wait()
		if !canceled.Load() {
			t.Error("the first attempt was not canceled")
		}
	})
}

// TestHedgeBudget checks that hedges are taken from a retry budget and
// that a hedge the budget refuses is not sent.
func TestHedgeBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: 0.01, MinRetries: 2})
		rec := &endpointtest.Recorder{}
		var calls atomic.Int32
		ep := func(ctx context.Context, _ any) (any, error) {
			calls.Add(1)
			time.Sleep(100 * time.Millisecond)
			return "slow", nil
		}
		call := middleware.Hedge(middleware.HedgeConfig{Delay: 10 * time.Millisecond, Budget: budget, Idempotent: always, Observer: rec})(ep)
		for range 5 {
			if _, err := call(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := calls.Load(); got != 5+2 {
			t.Errorf("%d attempts for 5 slow calls with a budget of 2 hedges, want 7", got)
		}
		hedges := 0
		for _, e := range rec.Events() {
			if e.Kind == middleware.EventHedge && e.Attempt == 2 {
				hedges++
			}
		}
		if hedges != 2 {
			t.Errorf("%d EventHedge, want 2", hedges)
		}
	})
}

// TestHedgeQuantile checks that the delay follows the recent latencies:
// after 200 calls of 20ms, a p50 hedge goes about 20ms in, not at Delay.
func TestHedgeQuantile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slowPhase atomic.Bool
		var slowCalls atomic.Int32
		var hedgedAt time.Duration
		var start time.Time
		ep := func(ctx context.Context, _ any) (any, error) {
			d := 20 * time.Millisecond
			if slowPhase.Load() {
				if slowCalls.Add(1) == 2 { // the hedge
					hedgedAt = time.Since(start)
					return "hedge", nil
				}
				d = time.Hour
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return "first", nil
		}
		call := middleware.Hedge(middleware.HedgeConfig{Delay: time.Millisecond, Quantile: 0.5, Idempotent: always, Observer: quiet})(ep)
		for range 200 {
			if _, err := call(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		}
		slowPhase.Store(true)
		start = time.Now()
		resp, err := call(context.Background(), nil)
		if err != nil || resp != "hedge" {
			t.Fatalf("got %v, %v; want the hedge's answer", resp, err)
		}
		if hedgedAt < 20*time.Millisecond || hedgedAt > 25*time.Millisecond {
			t.Errorf("hedge sent %v in, want about the p50 of 20ms", hedgedAt)
		}
	})
}

func TestHedgeConfig(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   middleware.HedgeConfig
		field string
	}{
		{"no delay nor quantile", middleware.HedgeConfig{Idempotent: always}, "hedge.delay"},
		{"negative delay", middleware.HedgeConfig{Delay: -1, Idempotent: always}, "hedge.delay"},
		{"quantile 1", middleware.HedgeConfig{Quantile: 1, Idempotent: always}, "hedge.quantile"},
		{"NaN quantile", middleware.HedgeConfig{Delay: time.Second, Quantile: math.NaN(), Idempotent: always}, "hedge.quantile"},
		{"negative max", middleware.HedgeConfig{Delay: time.Second, MaxHedges: -1, Idempotent: always}, "hedge.max_hedges"},
		{"no Idempotent", middleware.HedgeConfig{Delay: time.Second}, "hedge.idempotent"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var ce *middleware.ConfigError
			if !errors.Is(err, middleware.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Path != tt.field {
				t.Fatalf("Validate() = %v, want a ConfigError for %s", err, tt.field)
			}
		})
	}
}
