package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/resiliencekit/resilience/operations"
)

// maxRequestBody caps every request body serve reads: the demo's largest
// legitimate body, a POST /embed of a few texts, is well under it.
const maxRequestBody = 64 << 10

// handler returns the service's routes behind [operations.Guard]: what serve
// answers. The guard makes serve safe to run on a developer's laptop, in
// one place for every route: only loopback Host names (or those given with
// -allow-host) are answered, so a page that rebinds its domain to 127.0.0.1
// cannot read or drive the demo; a state-changing request must be
// same-origin and application/json, so no cross-site form gets through;
// and bodies are capped at maxRequestBody.
func (s *service) handler() http.Handler {
	h, err := operations.Guard(s.routes(), operations.GuardConfig{Hosts: s.opts.hosts, MaxBody: maxRequestBody})
	if err != nil {
		panic(err) // not reached: the routes are not nil and the cap is positive
	}
	return h
}

// loopbackClient is the demo's authorizer for the operations handler's
// actions: a client on this machine may act, any other may only look.
func loopbackClient(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return fmt.Errorf("remote address %q: %w", r.RemoteAddr, err)
	}
	if addr, err := netip.ParseAddr(host); err != nil || !addr.IsLoopback() {
		return fmt.Errorf("client %s is not on this machine", host)
	}
	return nil
}
