// Package registry holds named circuit breakers built on
// [github.com/sony/gobreaker/v2]: the guide's CircuitBreaker class registry.
//
// The same name always gives the same [*Breaker], so every caller of one
// service shares one breaker (the guide's shared "chromadb" breaker). Asking
// for a name with other [Settings] than the breaker has is an error
// ([ErrConflict]) that names both settings, never a silent first-wins.
// [Default] is the process-wide registry; [New] makes others (one per test
// keeps tests apart).
//
// # States
//
// A breaker is closed until FailureThreshold consecutive failures (default 5)
// open it; it opens on the 5th, where gobreaker's own default opens on the
// 6th. Optionally a ratio rule also opens it when the failure ratio over a
// rolling window reaches FailureRatio; the window never shortens the
// consecutive streak. An open breaker rejects calls with a
// [*CircuitOpenError] (matching [ErrOpen]) until exactly ResetTimeout
// (default 60s) has passed, then half-opens: it admits SuccessThreshold
// probes (default 2) at once; that many successes close it, one failure opens
// it again.
//
// # Monitoring
//
// [Registry.States] returns a [Snapshot] of every breaker with the state
// current at the call, [Registry.Names] the sorted names, and
// [Registry.Reset], [Registry.ResetAll], [Breaker.Reset] and [Breaker.Trip]
// drive breakers by hand. State changes go to the listeners given with
// [Config.Listeners] and [Breaker.Subscribe], outside every lock, in order,
// exactly once each, so a listener may call back into the registry.
//
// # Shared state
//
// A registry given a [Config.Store] keeps its breakers' state in a [Store]
// shared by the replicas of a service (the redisstore package has one on
// Redis): failures are counted fleet-wide, an open breaker is pushed to
// every replica, half-open admits SuccessThreshold probes fleet-wide, and a
// closed breaker's success path makes no store round trip. When the store
// is unreachable, breakers decide locally until it answers again.
// [Store] says what is shared and what it costs; [MemoryStore] shares
// breakers between registries of one process.
//
// # Bounds
//
// Names are checked ([CheckName]: non-empty, at most [MaxNameLen] bytes,
// printable) and a registry holds at most [DefaultMaxBreakers] names unless
// told otherwise ([Config.MaxBreakers]), so names taken from request data
// cannot grow memory without bound.
//
// # Fast paths
//
// With the consecutive rule alone, a call on a closed breaker with no failure
// streak takes no lock, reads no clock, allocates nothing and writes no
// shared memory; an open breaker rejects without a lock or an allocation.
// Everything else goes through gobreaker. bench/RESULTS.md has the figures. The middleware package wraps all of this for go-kit endpoints.
package registry
