package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/observe/kitmetrics"
	"github.com/resiliencekit/resilience/operations"
	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
)

//go:embed status.html
var statusPage []byte

// serveOptions are serve's flags.
type serveOptions struct {
	port  int      // on 127.0.0.1; 0 picks a free one
	scale int      // divides the policy file's delays
	rps   float64  // background calls per second through the protected endpoint
	redis string   // a Redis address to share the breaker through; "" for none
	hosts []string // host names answered besides the loopback ones
}

var defaultServeOptions = serveOptions{port: 8080, scale: 10, rps: 10}

// service is what serve runs: the upstream, the protected client, its
// registry, health checker and event log, and the background traffic.
type service struct {
	opts       serveOptions
	up         *upstream
	client     *http.Client
	reg        *registry.Registry
	checker    *health.Checker
	report     endpoint.Endpoint // health.Endpoint: the health report
	protected  endpoint.Endpoint // the stack around the go-kit client
	degradable endpoint.Endpoint // the stack without its fallback, for search
	events     *eventLog
	ops        *operations.Events // the operations handler's ring
	calls      callCounts         // every call through the stack, from its Measure layer
	traffic    trafficStats
	rps        atomic.Uint64 // math.Float64bits of the background rate
	stack      string
	from       string
	metrics    http.Handler      // /metrics, in the Prometheus text format
	store      *redisstore.Store // with -redis: the shared breaker state
}

// newService starts the upstream and builds the protected client.
func newService(opts serveOptions, logger *slog.Logger) (*service, error) {
	stack, from, err := loadStack("embedding_api")
	if err != nil {
		return nil, err
	}
	stack = scaleStack(stack, opts.scale)
	s := &service{opts: opts, client: newHTTPClient(), reg: registry.New(registry.Config{}), events: newEventLog(300), ops: operations.NewEvents(500), from: from}
	if opts.redis != "" {
		// Replicas started with the same -redis share one breaker.
		s.store = redisstore.Open(opts.redis)
		s.reg = s.store.Registry(registry.Config{})
	}
	prom := prometheus.NewRegistry()
	metrics, err := kitmetrics.NewPrometheus("", prom)
	if err != nil {
		return nil, err
	}
	s.metrics = kitmetrics.Handler(prom)
	s.rps.Store(floatBits(opts.rps))
	s.up, err = startUpstream(chaos.New(chaos.Config{Name: "embedding_api", Observer: s.events}))
	if err != nil {
		return nil, err
	}
	s.up.ready.Store(true)
	// The upstream's health endpoint fails as often as its API: the chaos's
	// error rate, with no event of its own.
	s.up.health.Store(chaos.New(chaos.Config{Name: "embedding_api/health", Observer: middleware.Discard}))

	// The stack's events go to the page's event log, to the Prometheus
	// metrics and, for state changes, to the logger. One pointer, so that the
	// breaker, shared by the two stacks below, reports each state change to
	// it once. Measure counts every call for the metrics.
	stack.Observer = &serveObserver{events: s.events, ops: s.ops, calls: &s.calls, metrics: metrics, log: middleware.LogObserver(logger)}
	stack.Measure = true
	stack.CircuitBreaker.Registry = s.reg
	s.stack = stack.String()
	if s.protected, err = stack.Apply(clientEndpoint(s.client, s.up.URL)); err != nil {
		s.up.Close()
		return nil, err
	}
	stack.Fallback = middleware.FallbackConfig{}
	if s.degradable, err = stack.Apply(clientEndpoint(s.client, s.up.URL)); err != nil {
		s.up.Close()
		return nil, err
	}

	metrics.Sync(s.reg)
	s.checker = health.NewChecker(health.Config{DefaultTimeout: time.Second, Observer: metrics.HealthStatus})
	s.checker.MustRegister(health.Check{Name: "embedding_api", Func: heartbeat(s.client, s.up.URL)})
	s.checker.MustRegister(health.Check{Name: "circuits", Func: health.BreakerCheck(s.reg)})
	s.report = health.Endpoint(s.checker, health.HandlerConfig{ErrorDetails: true})
	return s, nil
}

func (s *service) Close() {
	if s.store != nil {
		_ = s.store.Close()
	}
	s.up.Close()
	s.client.CloseIdleConnections()
}

// serve runs the service on 127.0.0.1 until ctx ends.
func serve(ctx context.Context, opts serveOptions, stdout, stderr io.Writer) error {
	if opts.scale < 1 {
		return fmt.Errorf("-scale %d: must be at least 1", opts.scale)
	}
	if opts.rps < 0 || opts.rps > 1000 {
		return fmt.Errorf("-rps %g: must be between 0 and 1000", opts.rps)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	s, err := newService(opts, logger)
	if err != nil {
		return err
	}
	defer s.Close()

	// The guide's startup check: refuse to start without the embedding API.
	if err := s.checker.Require(ctx, "embedding_api"); err != nil {
		return err
	}
	logger.Info("all services healthy, starting")

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.port)))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "serving on http://%s/ (upstream on %s; delays scaled down %d×)\n", ln.Addr(), s.up.URL.Host, opts.scale)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.generate(ctx) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	_ = srv.Shutdown(shutdown)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// routes returns the service's handler.
func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(statusPage)
	})
	// The protected endpoint: a go-kit HTTP server around the stacked client.
	mux.Handle("POST /embed", httptransport.NewServer(
		s.protected,
		func(_ context.Context, r *http.Request) (any, error) {
			var req embedRequest
			err := json.NewDecoder(r.Body).Decode(&req)
			return req, err
		},
		httptransport.EncodeJSONResponse,
	))
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, search(r.Context(), s.degradable, r.URL.Query().Get("q")))
	})
	mux.Handle("GET /healthz", health.LivenessHandler())
	mux.Handle("GET /readyz", health.Handler(s.checker, health.HandlerConfig{ErrorDetails: true}))
	// The operations handler (package operations): GET /debug/breakers,
	// /debug/breakers/{name}, /debug/events, and the POST actions, which
	// the demo allows from loopback clients only.
	mux.Handle("/debug/", http.StripPrefix("/debug", operations.Handler(s.reg, operations.Config{
		Events: s.ops, ErrorDetails: true, Hosts: s.opts.hosts, Authorize: loopbackClient,
	})))
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /api/status", s.status)
	mux.HandleFunc("POST /api/chaos", s.setChaos)
	mux.HandleFunc("POST /api/traffic", s.setTraffic)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// chaosSettings is the page's view of the upstream's faults.
type chaosSettings struct {
	ErrorRate float64 `json:"error_rate"` // 0 to 1
	LatencyMS float64 `json:"latency_ms"` // added to every call; 0 for none
}

// statusJSON is what the page polls.
type statusJSON struct {
	Now      time.Time            `json:"now"`
	Stack    string               `json:"stack"`
	From     string               `json:"from"`
	Scale    int                  `json:"scale"`
	Chaos    chaosSettings        `json:"chaos"`
	RPS      float64              `json:"rps"`
	Traffic  trafficJSON          `json:"traffic"`
	Calls    callsJSON            `json:"calls"` // from the stack's Measure layer
	Breakers []operations.Breaker `json:"breakers"`
	Health   any                  `json:"health"`
	Events   []eventJSON          `json:"events"`
}

func (s *service) status(w http.ResponseWriter, r *http.Request) {
	rep, err := s.report(r.Context(), nil)
	if err != nil {
		rep = map[string]string{"status": "fail", "error": err.Error()}
	}
	breakers := operations.Breakers(s.reg)
	cfg := s.up.Chaos.Config()
	ch := chaosSettings{ErrorRate: cfg.ErrorRate}
	if cfg.LatencyRate > 0 {
		ch.LatencyMS = float64(cfg.Latency) / float64(time.Millisecond)
	}
	writeJSON(w, statusJSON{
		Now:      time.Now(),
		Stack:    s.stack,
		From:     s.from,
		Scale:    s.opts.scale,
		Chaos:    ch,
		RPS:      floatOf(s.rps.Load()),
		Traffic:  s.traffic.snapshot(),
		Calls:    s.calls.snapshot(),
		Breakers: breakers,
		Health:   rep,
		Events:   s.events.recent(100),
	})
}

// setChaos changes the upstream's faults: a JSON chaosSettings body.
func (s *service) setChaos(w http.ResponseWriter, r *http.Request) {
	var in chaosSettings
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		http.Error(w, "want {\"error_rate\": 0..1, \"latency_ms\": n}: "+err.Error(), http.StatusBadRequest)
		return
	}
	if in.LatencyMS < 0 || in.LatencyMS > 600_000 {
		http.Error(w, "latency_ms must be between 0 and 600000", http.StatusBadRequest)
		return
	}
	cfg := chaos.Config{Name: "embedding_api", ErrorRate: in.ErrorRate, Observer: s.events}
	if in.LatencyMS > 0 {
		cfg.LatencyRate, cfg.Latency = 1, time.Duration(in.LatencyMS*float64(time.Millisecond))
	}
	if err := s.up.Chaos.Set(cfg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_ = s.up.health.Load().Set(chaos.Config{Name: "embedding_api/health", ErrorRate: in.ErrorRate, Observer: middleware.Discard})
	s.events.note("upstream", "chaos_set", fmt.Sprintf("error rate %g%%, latency %gms", in.ErrorRate*100, in.LatencyMS))
	writeJSON(w, in)
}

// setTraffic changes the background rate: {"rps": n}.
func (s *service) setTraffic(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RPS float64 `json:"rps"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.RPS < 0 || in.RPS > 1000 {
		http.Error(w, "want {\"rps\": 0..1000}", http.StatusBadRequest)
		return
	}
	s.rps.Store(floatBits(in.RPS))
	writeJSON(w, in)
}

// generate calls the protected endpoint in the background at the current
// rate, each call on its own goroutine (at most 64 at once), until ctx ends.
func (s *service) generate(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, 64)
	for i := 0; ; i++ {
		rps := floatOf(s.rps.Load())
		wait := time.Second
		if rps > 0 {
			wait = time.Duration(float64(time.Second) / rps)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if rps <= 0 {
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			s.traffic.dropped.Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			req := embedRequest{Texts: []string{corpus[rand.IntN(len(corpus))], fmt.Sprintf("chunk %d", i)}}
			start := time.Now()
			resp, err := s.protected(ctx, req)
			s.traffic.record(time.Since(start), resp, err)
		})
	}
}

// serveObserver sends every event to the metrics, the page's call counts
// and event log, and logs the breaker's state changes.
type serveObserver struct {
	events  *eventLog
	ops     *operations.Events
	calls   *callCounts
	metrics middleware.Observer
	log     middleware.Observer
}

func (o *serveObserver) Observe(ctx context.Context, e middleware.Event) {
	o.metrics.Observe(ctx, e)
	o.calls.observe(e)
	o.events.Observe(ctx, e)
	o.ops.Observe(ctx, e)
	if e.Kind == middleware.EventStateChange {
		o.log.Observe(ctx, e)
	}
}

// trafficStats counts the background calls.
type trafficStats struct {
	calls, ok, fallbacks, errors, dropped atomic.Int64

	mu     sync.Mutex
	recent []time.Duration // the last 200 latencies
	next   int
}

func (t *trafficStats) record(d time.Duration, resp any, err error) {
	t.calls.Add(1)
	switch r, _ := resp.([][]float32); {
	case err != nil:
		t.errors.Add(1)
	case len(r) == 0:
		t.fallbacks.Add(1) // the fallback's [] decodes to no embeddings
	default:
		t.ok.Add(1)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.recent) < 200 {
		t.recent = append(t.recent, d)
		return
	}
	t.recent[t.next] = d
	t.next = (t.next + 1) % len(t.recent)
}

type trafficJSON struct {
	Calls     int64   `json:"calls"`
	OK        int64   `json:"ok"`
	Fallbacks int64   `json:"fallbacks"`
	Errors    int64   `json:"errors"`
	Dropped   int64   `json:"dropped"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
}

func (t *trafficStats) snapshot() trafficJSON {
	out := trafficJSON{Calls: t.calls.Load(), OK: t.ok.Load(), Fallbacks: t.fallbacks.Load(), Errors: t.errors.Load(), Dropped: t.dropped.Load()}
	t.mu.Lock()
	l := slices.Clone(t.recent)
	t.mu.Unlock()
	if len(l) > 0 {
		slices.Sort(l)
		at := func(p float64) float64 {
			i := min(max(int(p*float64(len(l))+0.5)-1, 0), len(l)-1)
			return float64(l[i]) / float64(time.Millisecond)
		}
		out.P50MS, out.P99MS = at(0.50), at(0.99)
	}
	return out
}

func floatBits(f float64) uint64 { return math.Float64bits(f) }
func floatOf(b uint64) float64   { return math.Float64frombits(b) }
