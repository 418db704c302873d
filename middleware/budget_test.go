package middleware_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/middleware"
)

var errFlaky = errors.New("flaky")

// flaky fails each call with probability share, from a seeded source.
func flaky(share float64, seed uint64) (func(context.Context, any) (any, error), *int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	var mu sync.Mutex
	calls := 0
	return func(context.Context, any) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if rng.Float64() < share {
			return nil, errFlaky
		}
		return "ok", nil
	}, &calls
}

// TestRetryBudgetAmplification is the flapping case of issue 16 at the unit
// level: at a 50% failure rate three attempts make about 1.75 calls per
// call; with the default budget at most 1.2 plus the reserve.
func TestRetryBudgetAmplification(t *testing.T) {
	const calls = 20_000
	for _, tt := range []struct {
		name     string
		budget   *middleware.RetryBudget
		min, max float64
	}{
		{"no budget", nil, 1.70, 1.80},
		{"default budget", middleware.NewRetryBudget(middleware.RetryBudgetConfig{}), 1.19, 1.2 + 3.0/calls},
		{"ratio 0.1", middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: 0.1, MinRetries: 10}), 1.09, 1.1 + 10.0/calls},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ep, n := flaky(0.5, 1)
			call := middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Budget: tt.budget, Observer: middleware.Discard})(ep)
			for range calls {
				_, _ = call(context.Background(), nil)
			}
			if amp := float64(*n) / calls; amp < tt.min || amp > tt.max {
				t.Errorf("amplification = %.4f, want in [%.4f, %.4f]", amp, tt.min, tt.max)
			}
		})
	}
}

// TestRetryBudgetBound checks the budget's promise over any sequence of
// calls, failures and layers sharing it: retries <= Ratio*calls + reserve.
func TestRetryBudgetBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ratio := rapid.Float64Range(0.01, 1).Draw(t, "ratio")
		reserve := rapid.IntRange(1, 10).Draw(t, "reserve")
		b := middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: ratio, MinRetries: reserve})
		layers := make([]func(context.Context, any) (any, error), rapid.IntRange(1, 3).Draw(t, "layers"))
		attempts := 0
		fails := rapid.SliceOfN(rapid.Bool(), 1, 400).Draw(t, "fails")
		i := 0
		ep := func(context.Context, any) (any, error) {
			attempts++
			f := fails[i%len(fails)]
			i++
			if f {
				return nil, errFlaky
			}
			return nil, nil
		}
		for j := range layers {
			layers[j] = middleware.Retry(middleware.RetryConfig{MaxAttempts: rapid.IntRange(1, 6).Draw(t, "attempts"), NoDelay: true, Budget: b, Observer: middleware.Discard})(ep)
		}
		calls := rapid.IntRange(1, 300).Draw(t, "calls")
		for k := range calls {
			_, _ = layers[k%len(layers)](context.Background(), nil)
		}
		retries := attempts - calls
		if bound := ratio*float64(calls) + float64(reserve); float64(retries) > bound+1e-9 {
			t.Fatalf("%d retries over %d calls, want at most %.3f (ratio %.3f, reserve %d)", retries, calls, bound, ratio, reserve)
		}
	})
}

// TestRetryBudgetRefusal checks what a refused retry returns and reports.
func TestRetryBudgetRefusal(t *testing.T) {
	b := middleware.NewRetryBudget(middleware.RetryBudgetConfig{Ratio: 0.01, MinRetries: 1})
	rec := &endpointtest.Recorder{}
	fail := func(context.Context, any) (any, error) { return nil, errFlaky }
	call := middleware.Retry(middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Budget: b, Observer: rec})(fail)

	// The reserve's one retry, then the budget refuses the next.
	_, err := call(context.Background(), nil)
	var re *middleware.RetryError
	if !errors.As(err, &re) || re.Attempts != 2 || !errors.Is(err, middleware.ErrRetryBudgetExhausted) {
		t.Fatalf("first call: %v, want 2 attempts, then the budget's refusal", err)
	}
	if b.Available() != 0 {
		t.Fatalf("Available = %d after the reserve was spent, want 0", b.Available())
	}
	before := len(rec.Events())
	_, err = call(context.Background(), nil)
	if !errors.Is(err, middleware.ErrRetryBudgetExhausted) || !errors.Is(err, errFlaky) {
		t.Fatalf("second call: %v, want both ErrRetryBudgetExhausted and the last error", err)
	}
	if !errors.As(err, &re) || re.Attempts != 1 {
		t.Errorf("second call: %+v, want 1 attempt", re)
	}
	ev := rec.Events()[before:]
	if len(ev) != 1 || ev[0].Kind != middleware.EventRetry || !errors.Is(ev[0].Err, middleware.ErrRetryBudgetExhausted) {
		t.Errorf("events = %v, want one EventRetry giving up with the budget's refusal", ev)
	}
}

func TestRetryBudgetConfig(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   middleware.RetryBudgetConfig
		field string
	}{
		{"negative ratio", middleware.RetryBudgetConfig{Ratio: -0.1}, "retry_budget.ratio"},
		{"ratio above 1", middleware.RetryBudgetConfig{Ratio: 1.5}, "retry_budget.ratio"},
		{"NaN ratio", middleware.RetryBudgetConfig{Ratio: math.NaN()}, "retry_budget.ratio"},
		{"infinite ratio", middleware.RetryBudgetConfig{Ratio: math.Inf(1)}, "retry_budget.ratio"},
		{"negative reserve", middleware.RetryBudgetConfig{MinRetries: -1}, "retry_budget.min_retries"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var ce *middleware.ConfigError
			if !errors.Is(err, middleware.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Path != tt.field {
				t.Fatalf("Validate() = %v, want a ConfigError for %s", err, tt.field)
			}
			defer func() {
				if r := recover(); r == nil {
					t.Error("NewRetryBudget did not panic")
				}
			}()
			middleware.NewRetryBudget(tt.cfg)
		})
	}
	if err := (middleware.RetryBudgetConfig{Ratio: 1, MinRetries: 0}).Validate(); err != nil {
		t.Errorf("ratio 1: %v", err)
	}
}

func TestRetryBudgetInPolicyAndExplain(t *testing.T) {
	s := middleware.Stack{Retry: middleware.RetryConfig{MaxAttempts: 3, Budget: middleware.NewRetryBudget(middleware.RetryBudgetConfig{})}}
	got := s.Explain()
	if want := "at most 0.2 retries per call on average over the calls sharing its budget (retry budget 20% of calls, reserve 3)"; !strings.Contains(got, want) {
		t.Errorf("Explain():\n%s\nwant it to contain %q", got, want)
	}
	if got, want := s.String(), "retry(3 attempts, retry budget 20% of calls, reserve 3)"; !strings.Contains(got, want) {
		t.Errorf("String() = %q, want it to contain %q", got, want)
	}
}
