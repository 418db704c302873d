package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// DefaultPoolRetries is the default cap of a [Store.RetryBudgetPool].
const DefaultPoolRetries = 100

// maxPoolRetries bounds the cap of a retry budget pool.
const maxPoolRetries = 1 << 30

// poolScript adds ARGV[1] (millionths of a retry) to the balance in KEYS[1],
// up to ARGV[3], takes up to ARGV[2] from it, and returns what it took, or
// -1 for a key that holds no sane balance (left as it is). The key expires
// ARGV[4] ms after its last change.
var poolScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local cap = tonumber(ARGV[3])
local bal = 0
if v then
  if #v > 32 or not string.find(v, '^%d+$') then return -1 end
  bal = tonumber(v)
  if not bal or bal > cap then return -1 end
end
bal = math.min(bal + tonumber(ARGV[1]), cap)
local took = math.min(tonumber(ARGV[2]), bal)
bal = bal - took
redis.call('SET', KEYS[1], string.format('%.0f', bal), 'PX', ARGV[4])
return took
`)

// RetryBudgetPool returns a [middleware.BudgetPool] for
// [middleware.RetryBudgetConfig].Pool that keeps the fleet's balance of
// retries under key in this store's Redis, holding at most maxRetries
// (0: [DefaultPoolRetries]). Give every replica's budget for one dependency
// the pool of the same key: the fleet's retries then stay under its
// Ratio × the fleet's calls (plus each replica's MinRetries). An exchange
// is one round trip bounded by [Config.Timeout]; what the key holds is
// untrusted: a value that is not a balance the script wrote is an error
// matching [registry.ErrBadRecord], and the budgets then decide alone. It
// panics, matching [middleware.ErrInvalidConfig], when key is not a valid
// name or maxRetries is out of range.
func (s *Store) RetryBudgetPool(key string, maxRetries int) middleware.BudgetPool {
	if err := registry.CheckName(key); err != nil {
		panic(fmt.Errorf("%w: retry budget pool: %w", middleware.ErrInvalidConfig, err))
	}
	if maxRetries < 0 || maxRetries > maxPoolRetries {
		panic(fmt.Errorf("%w: retry budget pool: maxRetries = %d, must be 0 (the default, %d) or between 1 and %d", middleware.ErrInvalidConfig, maxRetries, DefaultPoolRetries, maxPoolRetries))
	}
	if maxRetries == 0 {
		maxRetries = DefaultPoolRetries
	}
	return &budgetPool{s: s, keyName: key, key: s.cfg.Prefix + "budget:" + key, cap: int64(maxRetries) * 1_000_000}
}

type budgetPool struct {
	s       *Store
	keyName string
	key     string
	cap     int64 // millionths
}

// Exchange implements [middleware.BudgetPool].
func (p *budgetPool) Exchange(ctx context.Context, deposit, want int64) (int64, error) {
	deposit, want = max(0, min(deposit, p.cap)), max(0, min(want, p.cap))
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.Timeout)
	defer cancel()
	took, err := poolScript.Run(ctx, p.s.c, []string{p.key}, deposit, want, p.cap, strconv.FormatInt(p.s.cfg.KeyTTL.Milliseconds(), 10)).Int64()
	if err != nil {
		return 0, err
	}
	if took < 0 || took > want {
		return 0, &registry.KeyError{Name: p.keyName, Key: p.key, Err: registry.ErrBadRecord, Reason: "the value is not a balance of retries the pool wrote"}
	}
	return took, nil
}
