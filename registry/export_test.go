package registry

// Subscribers returns the number of subscribers of b (see Breaker.Subscribe).
func Subscribers(b *Breaker) int { return b.subscribers() }

// BreakerCount returns the number of breakers of r, as Limiter counts them.
func BreakerCount(r *Registry) int { return r.breakerCount() }
