package operations

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

// DefaultMaxBody is the default [GuardConfig].MaxBody: 64 KiB.
const DefaultMaxBody = 64 << 10

// GuardConfig configures [Guard]. The zero value is the defaults.
type GuardConfig struct {
	// Hosts are host names, besides the loopback ones, that requests may
	// name in their Host header (compared without case and port), such as
	// the name a reverse proxy forwards. Default none: only localhost,
	// 127.0.0.0/8 and [::1] are served.
	Hosts []string
	// MaxBody is the most a request body may hold, in bytes; a larger one
	// gets 413 before the handler sees any of it. Default (0)
	// [DefaultMaxBody]; negative is an error.
	MaxBody int64
}

// Guard returns h behind the checks that make an operations or debug
// handler safe to serve from a developer's laptop or a pod, in one place
// for every route. It returns an error when cfg is not valid.
//
//   - Host: only a loopback name (localhost, 127.0.0.0/8, [::1], any port)
//     or one of cfg.Hosts is answered; any other gets 421 Misdirected
//     Request. A web page that rebinds its own domain name to 127.0.0.1
//     (DNS rebinding) sends its own name and can neither read nor drive h.
//   - Cross-origin requests: a state-changing request (any method but GET,
//     HEAD and OPTIONS) that a browser marks cross-origin (Sec-Fetch-Site,
//     or an Origin that is not the Host) gets 403 Forbidden
//     ([http.CrossOriginProtection]).
//   - Content type: a state-changing request must say application/json, or
//     it gets 415 Unsupported Media Type, so a cross-site form or text/plain
//     POST, which browsers send without a preflight, never gets through,
//     even from a browser that sends neither header.
//   - Body: at most cfg.MaxBody bytes are read; a larger body gets 413
//     Request Entity Too Large.
func Guard(h http.Handler, cfg GuardConfig) (http.Handler, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: operations: Guard of a nil handler", errInvalid)
	}
	if cfg.MaxBody < 0 {
		return nil, fmt.Errorf("%w: operations: GuardConfig.MaxBody = %d, must not be negative", errInvalid, cfg.MaxBody)
	}
	maxBody := cfg.MaxBody
	if maxBody == 0 {
		maxBody = DefaultMaxBody
	}
	allowed := make(map[string]bool, len(cfg.Hosts))
	for _, name := range cfg.Hosts {
		allowed[strings.ToLower(name)] = true
	}
	csrf := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := hostName(r.Host); !isLoopbackName(name) && !allowed[name] {
			http.Error(w, fmt.Sprintf("operations: host %q is not served: only loopback names are (localhost, 127.0.0.1, [::1]) and those configured", r.Host), http.StatusMisdirectedRequest)
			return
		}
		if err := csrf.Check(r); err != nil {
			http.Error(w, "operations: cross-origin request refused", http.StatusForbidden)
			return
		}
		if !safeMethod(r.Method) {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				http.Error(w, "operations: want Content-Type: application/json", http.StatusUnsupportedMediaType)
				return
			}
		}
		if r.ContentLength > maxBody {
			http.Error(w, fmt.Sprintf("operations: request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, fmt.Sprintf("operations: request body over %d bytes", maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			if err != nil {
				http.Error(w, "operations: reading the request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	}), nil
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
