// Package chaos injects faults into go-kit endpoints on purpose, in the
// manner of Polly's chaos strategies: errors, latency and panics, each at a
// rate of its own, changed at run time. Use it to rehearse failure: in
// tests, to drive the resilience layers above it through their failure paths
// with real endpoints, and on game days, to degrade one dependency of a
// running service and watch its breakers, fallbacks and dashboards respond.
package chaos
