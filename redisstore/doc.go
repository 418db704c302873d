// Package redisstore shares circuit-breaker state and rate limits across
// the replicas of a service through Redis (github.com/redis/go-redis/v9),
// so that N replicas behave as one breaker and one rate limit instead of N.
// It is a package of its own so that programs that do not use Redis do not
// link a Redis client.
//
// # Breakers
//
// [Store] implements [registry.Store]: give it to a registry as
// [registry.Config.Store], or use [Store.Registry]. A breaker reads the shared
// state it keeps in memory, decides locally, makes the call, then records
// the outcome with one Lua script (atomic, by Redis's clock); it never holds
// a lock in Redis while a call runs. Changes of state are published on a
// channel, and every registry resyncs periodically as a backstop. See
// [registry.Store] for what is shared and what it costs.
//
// # Rate limits
//
// [Store.RateLimit] is [middleware.RateLimit] with one budget for the whole
// fleet (the generic cell rate algorithm in a Lua script). A waiting call
// books no slot further ahead than its deadline and MaxWait, and gives its
// slot back when its caller leaves during the wait.
//
// # Failure of Redis
//
// Every operation is bounded by the caller's context and [Config.Timeout].
// When Redis is slow or down, breakers and rate limits decide locally, report
// it ([Config.OnStatus], [registry.Registry.StoreStats],
// [Store.LimiterStats]), and go back to Redis when it answers again: Redis
// is never a new single point of failure.
//
// # Keys
//
// Every key and channel starts with [Config.Prefix]. Breaker names are
// bounded by their registry (the cap on names and [registry.CheckName]), and
// breaker keys expire [Config.KeyTTL] after their last change; a rate
// limit's key expires once its schedule is past.
//
// What Redis holds is untrusted: a key that holds another type or a value
// the scripts did not write is left as it is, and harms that one breaker or
// rate limit alone, which decides locally and is reported (a
// [registry.StoreStatus] naming it, with a [*registry.KeyError]) until the
// key is sane again; the others stay shared.
package redisstore
