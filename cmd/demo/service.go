package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
	resiliencehttp "github.com/resiliencekit/resilience/transport/http"
)

// This file holds what both modes share: the policy file, the upstream
// "embedding API" (a go-kit HTTP service that injects faults with
// chaos.Chaos), and its client (a go-kit HTTP client endpoint).

// embeddedPolicies is the guide's policy file, built into the demo: the
// demo reads no file at run time, wherever it runs from.
//
//go:embed policies.yaml
var embeddedPolicies []byte

// loadStack returns the named stack of the guide's policy file, with its
// fallback value as the client endpoint's response type ([][]float32, the
// embeddings), and says where it read it.
func loadStack(name string) (middleware.Stack, string, error) {
	const from = "policies.yaml (built into the demo)"
	set, err := policy.Parse(embeddedPolicies)
	if err != nil {
		return middleware.Stack{}, from, err
	}
	s, err := policy.StackFor[[][]float32](set, name)
	return s, from, err
}

// scaleStack divides every delay of s by factor, so that the guide's minutes
// pass in a moment: the breaker's 2m reset timeout, the retry's 1s delay,
// the 10s timeout.
func scaleStack(s middleware.Stack, factor int) middleware.Stack {
	d := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
		*v /= time.Duration(factor)
	}
	if c := &s.CircuitBreaker; c.Name != "" {
		d(&c.ResetTimeout, 60*time.Second)
		if c.Window != 0 {
			d(&c.Window, 60*time.Second)
		}
	}
	if c := &s.Retry; c.MaxAttempts != 0 && !c.NoDelay {
		d(&c.Delay, time.Second)
		if c.MaxDelay != 0 {
			d(&c.MaxDelay, 60*time.Second)
		}
	}
	if c := &s.Timeout; c.Timeout != 0 {
		d(&c.Timeout, 0)
	}
	return s
}

// embedRequest and embedResponse are the upstream API's JSON.
type embedRequest struct {
	Texts []string `json:"texts"`
}

type embedResponse struct {
	Embeddings [][]float32 `json:"embeddings"`
}

// dims is the length of the demo's embeddings.
const dims = 16

// embed returns a deterministic bag-of-words embedding of text: each word
// adds to the dimension its hash picks; the vector is normalised.
func embed(text string) []float32 {
	v := make([]float32, dims)
	for _, w := range strings.Fields(strings.ToLower(text)) {
		h := fnv.New32a()
		h.Write([]byte(strings.Trim(w, ".,:;!?\"'()")))
		v[h.Sum32()%dims]++
	}
	var n float64
	for _, x := range v {
		n += float64(x * x)
	}
	if n > 0 {
		for i := range v {
			v[i] /= float32(math.Sqrt(n))
		}
	}
	return v
}

// upstream is the flaky "embedding API": a go-kit HTTP service whose /embed
// endpoint is wrapped in a chaos.Chaos. An injected error resets the
// connection (as a crashing or overloaded service does), which the client
// sees as a real connection error; injected latency delays the answer.
type upstream struct {
	Chaos *chaos.Chaos
	URL   *url.URL
	ready atomic.Bool  // /healthz answers 200 once ready
	calls atomic.Int64 // requests that reached /embed
	// health, when set, injects faults into /healthz too: an outage the
	// chaos makes is seen by the health check, as a real one would be.
	health atomic.Pointer[chaos.Chaos]

	srv *http.Server
	ln  net.Listener
}

// startUpstream starts an upstream on a loopback port of its own, not ready
// until setReady.
func startUpstream(chaos *chaos.Chaos) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{Chaos: chaos, ln: ln, URL: &url.URL{Scheme: "http", Host: ln.Addr().String()}}
	embedEndpoint := func(_ context.Context, req any) (any, error) {
		r := req.(embedRequest)
		out := embedResponse{Embeddings: make([][]float32, len(r.Texts))}
		for i, t := range r.Texts {
			out.Embeddings[i] = embed(t)
		}
		return out, nil
	}
	mux := http.NewServeMux()
	mux.Handle("POST /embed", httptransport.NewServer(
		chaos.Middleware()(embedEndpoint),
		func(_ context.Context, r *http.Request) (any, error) {
			u.calls.Add(1)
			var req embedRequest
			err := json.NewDecoder(r.Body).Decode(&req)
			// Read the body to its end, so that net/http watches the
			// connection and cancels the request's context when the
			// client gives up (as a timeout does): the injected latency
			// then ends with it.
			_, _ = io.Copy(io.Discard, r.Body)
			return req, err
		},
		httptransport.EncodeJSONResponse,
		httptransport.ServerErrorEncoder(encodeUpstreamError),
	))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !u.ready.Load() {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		if c := u.health.Load(); c != nil {
			if _, err := c.Middleware()(endpoint.Nop)(r.Context(), nil); err != nil {
				http.Error(w, "injected fault", http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	u.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

// encodeUpstreamError resets the connection for an injected fault, and
// answers 500 for anything else.
func encodeUpstreamError(_ context.Context, err error, w http.ResponseWriter) {
	if errors.Is(err, chaos.ErrInjected) {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				if tcp, ok := conn.(*net.TCPConn); ok {
					_ = tcp.SetLinger(0) // close with RST: "connection reset by peer"
				}
				_ = conn.Close()
				return
			}
		}
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// Close stops the upstream at once.
func (u *upstream) Close() error { return u.srv.Close() }

// heartbeat is the upstream's health check, for a health.Checker.
func heartbeat(client *http.Client, base *url.URL) func(ctx context.Context) error {
	target := base.JoinPath("healthz").String()
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("embedding api: %s", resp.Status)
		}
		return nil
	}
}

// clientEndpoint returns a go-kit HTTP client endpoint for the upstream's
// /embed: it takes an embedRequest and returns the embeddings, a
// [][]float32 (the policy's fallback value is one too). An error answer is
// decoded by resiliencehttp.DecodeHTTPError, so the error classes see its
// status.
func clientEndpoint(client *http.Client, base *url.URL) endpoint.Endpoint {
	return httptransport.NewClient(http.MethodPost, base.JoinPath("embed"),
		httptransport.EncodeJSONRequest,
		func(_ context.Context, resp *http.Response) (any, error) {
			if err := resiliencehttp.DecodeHTTPError(resp); err != nil {
				return nil, err
			}
			var out embedResponse
			err := json.NewDecoder(resp.Body).Decode(&out)
			return out.Embeddings, err
		},
		httptransport.SetClient(client),
	).Endpoint()
}

// newHTTPClient returns a client with a transport of its own, so that the
// demo can close its idle connections when it ends.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
}

// corpus is what the search path searches.
var corpus = []string{
	"Retry with exponential backoff recovers from transient network failures",
	"A circuit breaker stops calls to a failing service and fails fast",
	"Timeouts bound how long a slow dependency may hold a request",
	"A fallback value keeps the pipeline running when a call fails",
	"Health checks refuse to start without the required services",
	"Bulkheads and rate limits shed load before it reaches the service",
}

// searchResult is what search returns.
type searchResult struct {
	Query   string   `json:"query"`
	Mode    string   `json:"mode"` // "semantic", "keyword" or "minimal"
	Results []string `json:"results"`
	Note    string   `json:"note,omitempty"`
}

// search is the guide's graceful degradation: semantic search through the
// embedding API while its circuit is closed; keyword search when the
// circuit is open (a *middleware.CircuitOpenError); nothing but a note on
// any other failure. embedEP is the stack without its fallback layer, so
// that the breaker's rejection reaches this code.
func search(ctx context.Context, embedEP endpoint.Endpoint, q string) searchResult {
	resp, err := embedEP(ctx, embedRequest{Texts: append([]string{q}, corpus...)})
	if e, ok := errors.AsType[*middleware.CircuitOpenError](err); ok {
		return searchResult{Query: q, Mode: "keyword", Results: keywordSearch(q),
			Note: fmt.Sprintf("%s is down (circuit %s, retry after %s): keyword search", e.Service, e.State, e.RetryAfter().Round(time.Millisecond))}
	}
	if err != nil {
		return searchResult{Query: q, Mode: "minimal", Note: "search failed: " + err.Error()}
	}
	vs, _ := resp.([][]float32)
	if len(vs) != len(corpus)+1 {
		return searchResult{Query: q, Mode: "minimal", Note: "embedding api returned a short answer"}
	}
	type scored struct {
		doc   string
		score float32
	}
	var ss []scored
	for i, doc := range corpus {
		var dot float32
		for j := range vs[0] {
			dot += vs[0][j] * vs[i+1][j]
		}
		ss = append(ss, scored{doc, dot})
	}
	slices.SortStableFunc(ss, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	return searchResult{Query: q, Mode: "semantic", Results: []string{ss[0].doc, ss[1].doc}}
}

// keywordSearch returns the documents sharing a word with q, most shared
// words first.
func keywordSearch(q string) []string {
	words := strings.Fields(strings.ToLower(q))
	type scored struct {
		doc string
		n   int
	}
	var ss []scored
	for _, doc := range corpus {
		n := 0
		for _, w := range words {
			if strings.Contains(strings.ToLower(doc), w) {
				n++
			}
		}
		if n > 0 {
			ss = append(ss, scored{doc, n})
		}
	}
	slices.SortStableFunc(ss, func(a, b scored) int { return b.n - a.n })
	var out []string
	for i := 0; i < len(ss) && i < 2; i++ {
		out = append(out, ss[i].doc)
	}
	return out
}
