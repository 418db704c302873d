package middleware

import (
	"math"
	"time"
)

// The worst case of a stack is computed in closed form: its cost does not
// depend on MaxAttempts, so a policy of 1<<62 attempts is explained, checked
// and built as fast as one of 3. Every sum saturates at the largest Duration
// instead of overflowing.

// exactWaits is how many leading waits sumDelays adds one by one (exactly,
// as Retry computes each); the rest are summed in closed form.
const exactWaits = 64

// jitterTop is the rnd that gives the largest jittered delay Retry can wait:
// rand.Float64 is below 1, and delayFor clamps 0.5+rnd below 1.5.
const jitterTop = 1

// satAdd returns a+b for non-negative a and b, or the largest Duration when
// the sum overflows.
func satAdd(a, b time.Duration) time.Duration {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// satMul returns n·d for non-negative n and d, or the largest Duration when
// the product overflows.
func satMul(n int, d time.Duration) time.Duration {
	if n <= 0 || d <= 0 {
		return 0
	}
	if int64(d) > math.MaxInt64/int64(n) {
		return math.MaxInt64
	}
	return time.Duration(n) * d
}

// sumDelays returns an upper bound on the total of the waits Retry makes
// after attempts 1..waits fail, each delayFor(k, rnd), saturating at the
// largest Duration. The first exactWaits waits are added as Retry computes
// them, so the bound is exact for up to exactWaits waits; later waits below
// the cap are summed as a geometric series in floating point (above the
// exact sum by at most two nanoseconds per wait and a relative 1e-12), and those
// at the cap as a product. It takes the same time for any waits.
func (s *retrySchedule) sumDelays(waits int, rnd float64) time.Duration {
	if waits <= 0 || s.delay <= 0 || s.maxDelay <= 0 {
		return 0
	}
	// top is the wait once the base delay is at MaxDelay: MaxDelay, or
	// less when rnd makes the jitter factor below 1.
	top := s.delayFor(math.MaxInt, rnd)
	var sum time.Duration
	k := 1
	for ; k <= waits && k <= exactWaits; k++ {
		d := s.delayFor(k, rnd)
		if d == top {
			// The waits never decrease (backoff >= 1): every later
			// one is top too.
			return satAdd(sum, satMul(waits-k+1, top))
		}
		sum = satAdd(sum, d)
	}
	if k > waits {
		return sum
	}
	rest := waits - k + 1 // waits k..waits, all below the cap so far
	if !(s.backoff >= 1) {
		// An invalid schedule (no Validate): bound each wait by the cap.
		return satAdd(sum, satMul(rest, s.maxDelay))
	}
	// Wait k (k > exactWaits) is d0·backoff^(k-1), d0 the jittered first
	// delay, truncated to whole nanoseconds, until it reaches top; top from
	// then on.
	f := jitterFactor(s.jitter, rnd)
	limit := float64(s.maxDelay)
	d0 := float64(s.delay) * f
	if s.backoff == 1 {
		return satAdd(sum, satMul(rest, s.delayFor(1, rnd)))
	}
	lb := math.Log(s.backoff)
	// Number of waits from k on still below top: the n >= 0 with
	// d0·b^(k-1+j) < min(limit, limit·f) for j < n (the base is capped at
	// limit before the jitter, the jittered delay at limit after it).
	n := math.Ceil((math.Log(min(limit, limit*f)/d0))/lb - float64(k-1))
	below := 0 // NaN or negative n: bound every wait by the cap
	if n >= float64(rest) {
		below = rest
	} else if n > 0 {
		below = int(n)
	}
	// Σ_{j=0}^{below-1} d0·b^(k-1+j) = d0·b^(k-1)·(b^below - 1)/(b - 1),
	// computed with Expm1 for accuracy when b is near 1; each term is also
	// at most top.
	geo := d0 * math.Exp(float64(k-1)*lb) * math.Expm1(float64(below)*lb) / math.Expm1(lb)
	// 1e-12: room for the rounding of Pow in delayFor against Exp here,
	// so that the result stays an upper bound.
	geo = math.Min(geo*(1+1e-12), float64(below)*float64(top))
	if !(geo < math.MaxInt64) {
		return math.MaxInt64
	}
	part := satAdd(time.Duration(geo), time.Duration(below)) // 1ns per wait, for rounding
	return satAdd(satAdd(sum, part), satMul(rest-below, top))
}

// jitterFactor is the factor delayFor multiplies a base delay by for rnd.
func jitterFactor(jitter bool, rnd float64) float64 {
	if !jitter {
		return 1
	}
	f := 0.5 + rnd
	if !(f >= 0.5) {
		return 0.5
	}
	return min(f, math.Nextafter(1.5, 0))
}
