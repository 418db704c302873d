package middleware

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// ErrRetryBudgetExhausted is matched by the error of a call whose retry its
// [RetryBudget] refused: the call ends with a [*RetryError] whose Err is
// the last attempt's error and whose Cause is ErrRetryBudgetExhausted, so
// it matches both.
var ErrRetryBudgetExhausted = errors.New("middleware: retry budget exhausted")

// RetryBudgetConfig configures a [RetryBudget]. The zero value is the
// default: retries at most 20% of calls, with a reserve of 3.
type RetryBudgetConfig struct {
	// Ratio is the most retries the budget allows per call, over the
	// calls of its Retry layers: 0.2 lets 2 retries through for every 10
	// calls. Default (0): 0.2. It must be in (0, 1]: NaN, infinite, negative
	// or above 1 is an error.
	Ratio float64

	// MinRetries is the budget's reserve: the retries it allows beyond the
	// ratio after a quiet spell, so a client with little traffic can still
	// retry a failure or two. Default (0): 3. Negative is an error.
	MinRetries int
}

// Validate returns every problem in c at once, each a [*ConfigError]
// matching [ErrInvalidConfig] and naming the field (as
// "retry_budget.ratio"); nil when c is valid.
func (c RetryBudgetConfig) Validate() error {
	p := problems{layer: "retry_budget", goType: "RetryBudgetConfig"}
	if math.IsNaN(c.Ratio) || c.Ratio < 0 || c.Ratio > 1 {
		p.add("ratio", "Ratio", c.Ratio, "must be in (0, 1] (0 means the default 0.2)")
	}
	if c.MinRetries < 0 {
		p.add("min_retries", "MinRetries", c.MinRetries, "must not be negative (0 means the default 3)")
	}
	return p.err()
}

// RetryBudget bounds the retries of every Retry layer that shares it
// ([RetryConfig].Budget), and the hedges of every [Hedge] layer, to a ratio
// of their calls: Envoy's retry_budget, gRPC's retryThrottling, failsafe-go's
// budget. When a dependency fails, retries multiply the load on it just when
// it can least take it (three attempts at a 50% failure rate: 1.75 calls per
// call); a budget keeps them to 1 + Ratio.
//
// It is a token bucket counted in calls, not in time: every call through a
// layer that shares it (its first attempt) adds Ratio tokens, up to
// MinRetries (at least 1); every retry or hedge takes one, and a retry that
// finds less than one token is refused. So over any run of calls, the
// retries it allows are at most Ratio × calls + MinRetries, however long
// they wait or run. It reads no clock, and a call that adds to a full bucket
// writes nothing.
//
// A RetryBudget is safe for concurrent use. Make it with [NewRetryBudget]
// and share it between the layers that call one dependency.
type RetryBudget struct {
	// tokens is the balance in millionths of a retry.
	tokens     atomic.Int64
	deposit    int64 // per call
	reserve    int64 // the most the bucket holds
	ratio      float64
	minRetries int
}

const budgetUnit = 1_000_000 // one retry, in the bucket's millionths

// NewRetryBudget returns a full budget. It panics with cfg.Validate's error
// (matching [ErrInvalidConfig]) when cfg is not valid.
func NewRetryBudget(cfg RetryBudgetConfig) *RetryBudget {
	mustValid(cfg.Validate())
	if cfg.Ratio == 0 {
		cfg.Ratio = 0.2
	}
	if cfg.MinRetries == 0 {
		cfg.MinRetries = 3
	}
	b := &RetryBudget{
		deposit:    int64(cfg.Ratio * budgetUnit),
		reserve:    int64(max(cfg.MinRetries, 1)) * budgetUnit,
		ratio:      cfg.Ratio,
		minRetries: cfg.MinRetries,
	}
	b.tokens.Store(b.reserve)
	return b
}

// called deposits a call's share. A full bucket is only read.
func (b *RetryBudget) called() {
	for {
		n := b.tokens.Load()
		if n >= b.reserve {
			return
		}
		if b.tokens.CompareAndSwap(n, min(n+b.deposit, b.reserve)) {
			return
		}
	}
}

// take withdraws one retry, and reports false, withdrawing nothing, when
// the bucket holds less than one.
func (b *RetryBudget) take() bool {
	for {
		n := b.tokens.Load()
		if n < budgetUnit {
			return false
		}
		if b.tokens.CompareAndSwap(n, n-budgetUnit) {
			return true
		}
	}
}

// Available reports how many retries the budget would allow now.
func (b *RetryBudget) Available() int { return int(b.tokens.Load() / budgetUnit) }

// String describes the budget, as Explain prints it: "retry budget 20% of
// calls, reserve 3".
func (b *RetryBudget) String() string {
	return fmt.Sprintf("retry budget %g%% of calls, reserve %d", 100*b.ratio, b.minRetries)
}
