// Package bench compares this module's middleware with its peers, in a
// module of its own so that the peers never become dependencies of
// github.com/resiliencekit/resilience. Run everything in one go:
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench
