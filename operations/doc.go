// Package operations serves the toolkit's state to operators over HTTP:
// every circuit breaker's state, counts and settings, the recent resilience
// events, and, when an authorizer allows, the actions an incident needs:
// reset, trip, hold open, disable, metrics only, back to normal.
//
//	events := operations.NewEvents(256) // give it to the layers as an Observer
//	mux.Handle("/debug/", http.StripPrefix("/debug", operations.Handler(reg, operations.Config{
//		Events:    events,
//		Authorize: func(r *http.Request) error { return checkToken(r) },
//	})))
//
// # Safe by default
//
// Without Config.Authorize the handler is read-only: every action is 403.
// Every route is behind [Guard], which answers only requests that name a
// loopback host (or one of Config.Hosts), refuses cross-origin and
// non-JSON state-changing requests and caps request bodies, so neither a
// web page the operator visits (CSRF) nor one that rebinds its domain to
// 127.0.0.1 (DNS rebinding) can drive it. Error text, which may hold
// secrets, is left out of events unless Config.ErrorDetails is set.
//
// # JSON
//
// Durations are strings, as in policy files ("1m0s"); settings have the
// keys of policy files. See [Breaker] and [Event].
package operations
