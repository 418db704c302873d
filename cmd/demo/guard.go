package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// maxRequestBody caps every request body serve reads: the demo's largest
// legitimate body, a POST /embed of a few texts, is well under it.
const maxRequestBody = 64 << 10

// handler returns the service's routes behind [guard]: what serve answers.
func (s *service) handler() http.Handler { return guard(s.routes(), maxRequestBody, s.opts.hosts...) }

// guard returns h behind the checks that make serve safe to run on a
// developer's laptop, in one place for every route:
//
//   - Host: only a loopback name is answered (localhost, 127.0.0.0/8, [::1],
//     with any port) or one of hosts; any other gets 421 Misdirected Request.
//     A page that rebinds its own domain name to 127.0.0.1 (DNS rebinding)
//     sends its own name and cannot read or drive the demo.
//   - Cross-origin requests: a state-changing request (any method but GET,
//     HEAD and OPTIONS) that a browser marks cross-origin (Sec-Fetch-Site, or
//     an Origin that is not the Host) gets 403 Forbidden
//     ([http.CrossOriginProtection]).
//   - Content type: a state-changing request must be application/json, or
//     it gets 415 Unsupported Media Type: a cross-site form or text/plain
//     POST, which browsers send without a preflight, never gets through,
//     even from a browser that sends neither header.
//   - Body: at most maxBody bytes are read; a larger body gets 413 Request
//     Entity Too Large before the route sees any of it.
func guard(h http.Handler, maxBody int64, hosts ...string) http.Handler {
	allowed := make(map[string]bool, len(hosts))
	for _, name := range hosts {
		allowed[strings.ToLower(name)] = true
	}
	csrf := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := hostName(r.Host); !isLoopbackName(name) && !allowed[name] {
			http.Error(w, fmt.Sprintf("demo: host %q is not served: only loopback names are (localhost, 127.0.0.1, [::1]), or those given with -allow-host", r.Host), http.StatusMisdirectedRequest)
			return
		}
		if err := csrf.Check(r); err != nil {
			http.Error(w, "demo: cross-origin request refused", http.StatusForbidden)
			return
		}
		if !safeMethod(r.Method) {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				http.Error(w, "demo: want Content-Type: application/json", http.StatusUnsupportedMediaType)
				return
			}
		}
		if r.ContentLength > maxBody {
			http.Error(w, fmt.Sprintf("demo: request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, fmt.Sprintf("demo: request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			if err != nil {
				http.Error(w, "demo: reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})
}

// safeMethod reports whether m is a method that changes no state.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// hostName returns the host name of a Host header, lower case, without its
// port or an IPv6 address's brackets.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}

// isLoopbackName reports whether name (from [hostName]) can only mean this
// machine: "localhost" or a loopback address.
func isLoopbackName(name string) bool {
	if name == "localhost" {
		return true
	}
	addr, err := netip.ParseAddr(name)
	return err == nil && addr.IsLoopback()
}
