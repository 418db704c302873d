package middleware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/internal/callback"
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

	// Pool, when set, makes the budget the fleet's, not this replica's:
	// every budget with the same pool (redisstore.Store.RetryBudgetPool:
	// every replica on one Redis) shares one balance, so the fleet's
	// retries stay under Ratio × the fleet's calls + MinRetries. The
	// replica deposits its calls' share in batches (a round trip per
	// about 10/Ratio calls, off the caller's goroutine) and leases a few
	// retries at a time when it has none. While the pool fails, the
	// budget decides alone, as a budget without a pool. Default nil.
	Pool BudgetPool
}

// BudgetPool is a balance of retries shared by the [RetryBudget]s of a
// fleet ([RetryBudgetConfig].Pool). Exchange adds deposit (in millionths of
// a retry: the share of the calls made since the last exchange) to the
// balance, up to the pool's cap, then takes up to want millionths from it
// and returns what it took (never more than want, never negative). It must
// be safe for concurrent use and bound its own time; an error leaves the
// balance as it was as far as the caller knows.
type BudgetPool interface {
	Exchange(ctx context.Context, deposit, want int64) (took int64, err error)
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

	// With a pool: the deposits not yet sent, and one exchange at a time.
	pool     BudgetPool
	pending  atomic.Int64
	flushing atomic.Bool
	mu       sync.Mutex // held by a lease
}

// poolLease is how many retries a pooled budget takes from its pool at
// once; poolFlush how many retries' worth of deposits it sends at once.
const (
	poolLease = 4
	poolFlush = 10
)

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
	b.pool = cfg.Pool
	return b
}

// poolTimeout bounds an exchange with the pool.
const poolTimeout = time.Second

// called deposits a call's share. A full bucket is only read. With a
// pool, the share goes to the pool, in batches.
func (b *RetryBudget) called() {
	if b.pool != nil {
		if b.pending.Add(b.deposit) >= poolFlush*budgetUnit && b.flushing.CompareAndSwap(false, true) {
			go b.flush()
		}
		return
	}
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

// flush sends the pending deposits to the pool, on a goroutine of the
// library's own.
func (b *RetryBudget) flush() {
	defer b.flushing.Store(false)
	defer callback.Guard(nil, "retry budget pool")
	d := b.pending.Swap(0)
	ctx, cancel := context.WithTimeout(context.Background(), poolTimeout)
	defer cancel()
	if _, err := b.pool.Exchange(ctx, d, 0); err != nil {
		b.depositLocal(d) // the pool failed: the share stays here
	}
}

// depositLocal adds d to the local bucket, up to the reserve.
func (b *RetryBudget) depositLocal(d int64) {
	for {
		n := b.tokens.Load()
		if n >= b.reserve || b.tokens.CompareAndSwap(n, min(n+d, b.reserve)) {
			return
		}
	}
}

// take withdraws one retry, and reports false, withdrawing nothing, when
// the bucket holds less than one and, with a pool, the pool has none to
// lease.
func (b *RetryBudget) take() bool {
	if b.takeLocal() {
		return true
	}
	if b.pool == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.takeLocal() { // another retry leased meanwhile
		return true
	}
	d := b.pending.Swap(0)
	ctx, cancel := context.WithTimeout(context.Background(), poolTimeout)
	defer cancel()
	var took int64
	p := callback.Call("retry budget pool", func() {
		var err error
		if took, err = b.pool.Exchange(ctx, d, poolLease*budgetUnit); err != nil {
			took = 0
			b.depositLocal(d) // the pool failed: decide alone
		}
	})
	if p != nil {
		b.depositLocal(d)
		p.Repanic()
	}
	if took > 0 {
		b.tokens.Add(min(took, poolLease*budgetUnit))
	}
	return b.takeLocal()
}

// takeLocal withdraws one retry from the local bucket.
func (b *RetryBudget) takeLocal() bool {
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
