package balancer_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/resiliencekit/resilience/balancer"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// upper is the instances' service: go-kit's stringsvc uppercase, in one
// endpoint.
type upperRequest struct {
	S string `json:"s"`
}

type upperResponse struct {
	V    string `json:"v"`
	From string `json:"from"`
}

// instanceServer starts a go-kit HTTP instance on 127.0.0.1 answering
// uppercase requests with its name. A dead one (alive false) drops every
// connection after calling seen.
func instanceServer(t *testing.T, name string, alive bool, seen func()) *httptest.Server {
	t.Helper()
	ep := func(_ context.Context, req any) (any, error) {
		r := req.(upperRequest)
		return upperResponse{V: stringsToUpper(r.S), From: name}, nil
	}
	h := httptransport.NewServer(ep,
		func(_ context.Context, r *http.Request) (any, error) {
			var req upperRequest
			return req, json.NewDecoder(r.Body).Decode(&req)
		},
		httptransport.EncodeJSONResponse)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen()
		}
		if !alive {
			panic(http.ErrAbortHandler) // the connection is dropped: the client sees a transport error
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func stringsToUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// httpFactory makes a go-kit HTTP client endpoint for an instance URL.
func httpFactory(client *http.Client) sd.Factory {
	return func(instance string) (endpoint.Endpoint, io.Closer, error) {
		u, err := url.Parse(instance)
		if err != nil {
			return nil, nil, err
		}
		c := httptransport.NewClient(http.MethodPost, u, httptransport.EncodeJSONRequest,
			func(_ context.Context, r *http.Response) (any, error) {
				var resp upperResponse
				return resp, json.NewDecoder(r.Body).Decode(&resp)
			}, httptransport.SetClient(client))
		return c.Endpoint(), nil, nil
	}
}

// Issue 17, part 1: go-kit's stringsvc3 proxy, re-expressed with a breaker
// per instance, over three real go-kit HTTP instances on 127.0.0.1, one of
// them dead. Every call is served remotely (the retry moves to another
// instance), the dead instance is called FailureThreshold times to detect
// it, and after that only while its breaker is half-open: as probes.
func TestThreeInstancesOneDead(t *testing.T) {
	const failureThreshold = 3
	var (
		spells      atomic.Int64 // half-open spells of the dead instance's breaker
		detectHits  atomic.Int64 // calls to the dead instance before its first half-open spell
		deadHits    atomic.Int64
		badHit      atomic.Value // a string: the state the dead instance was called in, when not a probe's
		deadBreaker atomic.Pointer[registry.Breaker]
	)
	dead := instanceServer(t, "dead", false, func() {
		deadHits.Add(1)
		if spells.Load() == 0 {
			detectHits.Add(1)
		}
		b := deadBreaker.Load()
		if b == nil {
			return
		}
		// A call reaches the instance while its breaker is closed (the
		// failures that detect it) or half-open (a probe), never open.
		if s := b.State(); s == registry.StateOpen {
			badHit.Store(s.String())
		}
	})
	a := instanceServer(t, "a", true, nil)
	b := instanceServer(t, "b", true, nil)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	reg := registry.New(registry.Config{})
	defer reg.Close()
	e, err := balancer.NewEndpointer(sd.FixedInstancer{a.URL, b.URL, dead.URL}, httpFactory(client), balancer.Config{
		Name:     "upper",
		Breaker:  middleware.BreakerConfig{FailureThreshold: failureThreshold, SuccessThreshold: 1, ResetTimeout: 5 * time.Millisecond, Observer: middleware.Discard},
		Registry: reg,
		Logger:   quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	db, ok := reg.Get("upper/" + dead.URL)
	if !ok {
		t.Fatalf("no breaker named by the dead instance; the registry has %v", reg.Names())
	}
	deadBreaker.Store(db)
	cancel := db.Subscribe("test", func(c registry.StateChange) {
		if c.To == registry.StateHalfOpen {
			spells.Add(1)
		}
	})
	defer cancel()

	bal, err := balancer.New(e, balancer.BalancerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	call := balancer.Retry(bal, middleware.RetryConfig{MaxAttempts: 3, NoDelay: true, Observer: middleware.Discard})
	fallback := middleware.FallbackValue(upperResponse{V: "fallback"})(call)

	served := map[string]int{}
	run := func(n int) {
		for i := range n {
			resp, err := fallback(context.Background(), upperRequest{S: "hello"})
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			r := resp.(upperResponse)
			served[r.From]++
			if r.V != "HELLO" {
				t.Errorf("call %d answered %q by %q, want HELLO from an instance (not the fallback)", i, r.V, r.From)
			}
		}
	}
	run(30)
	if got := detectHits.Load(); got != failureThreshold {
		t.Errorf("the dead instance was called %d times before its breaker first half-opened, want %d (FailureThreshold, then ejected)", got, failureThreshold)
	}
	if served["a"] == 0 || served["b"] == 0 || served["a"]+served["b"] != 30 {
		t.Errorf("served %v, want all 30 by a and b", served)
	}
	// Past the reset timeout the dead instance is probed, and only probed.
	time.Sleep(6 * time.Millisecond)
	run(30)
	if v := badHit.Load(); v != nil {
		t.Errorf("the dead instance was called while its breaker was %v, want only probes (half-open)", v)
	}
	if got, max := deadHits.Load(), failureThreshold+spells.Load(); got > max {
		t.Errorf("the dead instance was called %d times, want at most %d (detection, then one probe per half-open spell)", got, max)
	}
	if spells.Load() == 0 {
		t.Error("the dead instance's breaker never half-opened after its reset timeout")
	}
}

// quiet discards the balancer's logs in tests.
var quiet = slog.New(slog.DiscardHandler)
