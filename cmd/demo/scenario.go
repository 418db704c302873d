package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/resiliencekit/resilience/chaos"
	"github.com/resiliencekit/resilience/endpoint"
	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// demoScale is how much the demo shrinks the guide's delays: the breaker's
// 2m reset timeout becomes 1.2s, the retry's 1s delay 10ms, the 10s timeout
// 100ms.
const demoScale = 100

// demoOptions are the knobs of the scenario.
type demoOptions struct {
	scale int    // divides the policy file's delays
	seed  uint64 // of the upstream's fault draws
	// timeout and reset, when set, replace the scaled timeout and reset
	// timeout: the golden test gives itself headroom on a loaded machine.
	timeout, reset time.Duration
}

var defaultDemoOptions = demoOptions{scale: demoScale, seed: 12}

// entry is one line of the timeline.
type entry struct {
	at     time.Duration
	layer  string
	kind   string
	detail string
}

// timeline prints what happens as it happens, and keeps its structure (the
// section headings and the layer and kind of every entry) for the golden
// test. It is the middleware.Observer of the client's stack and of the
// upstream's Chaos.
type timeline struct {
	start time.Time
	w     io.Writer

	mu        sync.Mutex
	structure []string
	counts    map[middleware.EventKind]int
	rejected  int
	state     registry.State // the last state change's To
	changes   chan registry.State
}

func newTimeline(w io.Writer) *timeline {
	return &timeline{start: time.Now(), w: w, counts: map[middleware.EventKind]int{}, changes: make(chan registry.State, 64)}
}

func (t *timeline) section(n int, title string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "\n== %d. %s\n", n, title)
	t.structure = append(t.structure, fmt.Sprintf("== %d. %s", n, title))
}

func (t *timeline) add(layer, kind, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := entry{at: time.Since(t.start), layer: layer, kind: kind, detail: detail}
	fmt.Fprintf(t.w, "%8.3fs  %-16s %-16s %s\n", e.at.Seconds(), e.layer, e.kind, e.detail)
	t.structure = append(t.structure, e.layer+" "+e.kind)
}

// Observe implements middleware.Observer.
func (t *timeline) Observe(_ context.Context, e middleware.Event) {
	t.mu.Lock()
	t.counts[e.Kind]++
	if e.Kind == middleware.EventFallback && errors.Is(e.Err, middleware.ErrCircuitOpen) {
		t.rejected++
	}
	t.mu.Unlock()
	layer := e.Layer
	var detail string
	switch e.Kind {
	case middleware.EventStateChange:
		detail = fmt.Sprintf("%s: %s → %s", e.Name, e.From, e.To)
	case middleware.EventRetry:
		if re, ok := e.Err.(*middleware.RetryError); ok {
			detail = fmt.Sprintf("gave up after %d attempts (%s)", e.Attempt, short(re.Err))
		} else {
			detail = fmt.Sprintf("attempt %d failed (%s), next in %s", e.Attempt, short(e.Err), e.Wait.Round(100*time.Microsecond))
		}
	case middleware.EventTimeout:
		detail = fmt.Sprintf("attempt cut at %s", e.Latency)
	case middleware.EventFallback:
		detail = "served [] in place of: " + short(e.Err)
	case middleware.EventChaos:
		layer = "upstream/chaos"
		switch {
		case e.Wait > 0:
			detail = fmt.Sprintf("injects %s of latency", e.Wait)
		default:
			detail = "injects a fault: resets the connection"
		}
	default:
		detail = short(e.Err)
	}
	t.add(layer, e.Kind.String(), detail)
	if e.Kind == middleware.EventStateChange {
		// After the entry is printed, so that what the waiter does next
		// comes after it in the timeline.
		to := e.To
		t.mu.Lock()
		t.state = to
		t.mu.Unlock()
		select {
		case t.changes <- to:
		default:
		}
	}
}

// settle waits until the timeline has printed the breaker's change to state
// s. A state change can be delivered on another goroutine (the one that
// delivered the change before it); waiting for it after each call keeps the
// timeline in the order things happened.
func (t *timeline) settle(s registry.State) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		t.mu.Lock()
		got := t.state
		t.mu.Unlock()
		if got == s {
			return
		}
	}
}

// count returns how many events of kind were seen.
func (t *timeline) count(kind middleware.EventKind) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts[kind]
}

// waitState waits for the breaker's change to state s, reported through the
// observer, so that the timeline shows the change before what follows it.
func (t *timeline) waitState(ctx context.Context, s registry.State, limit time.Duration) error {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case got := <-t.changes:
			if got == s {
				return nil
			}
		case <-timer.C:
			return fmt.Errorf("breaker did not turn %s within %s", s, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// short describes an error in a few words: the root cause of a transport
// error, without the addresses.
func short(err error) string {
	if err == nil {
		return "no error"
	}
	if e, ok := errors.AsType[*middleware.CircuitOpenError](err); ok {
		return fmt.Sprintf("circuit %s is %s", e.Service, e.State)
	}
	var prefix string
	if e, ok := errors.AsType[*middleware.RetryError](err); ok {
		prefix = fmt.Sprintf("%d attempts: ", e.Attempts)
		err = e.Err
	}
	switch {
	case errors.Is(err, middleware.ErrTimeout):
		return prefix + "timeout"
	case errors.Is(err, syscall.ECONNRESET):
		return prefix + "connection reset by peer"
	case errors.Is(err, syscall.ECONNREFUSED):
		return prefix + "connection refused"
	}
	return prefix + err.Error()
}

// side is one client's traffic: the toolkit's or the bare endpoint's.
type side struct {
	mu        sync.Mutex
	calls     int
	successes int
	errors    int
	latencies []time.Duration
}

func (s *side) record(d time.Duration, ok, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if ok {
		s.successes++
	}
	if failed {
		s.errors++
	}
	s.latencies = append(s.latencies, d)
}

func (s *side) percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.latencies) == 0 {
		return 0
	}
	l := slices.Clone(s.latencies)
	slices.Sort(l)
	i := int(p*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// demo is one run of the scenario.
type demo struct {
	tl                 *timeline
	opts               demoOptions
	up, twin           *upstream
	client             *http.Client
	protected, bare    endpoint.Endpoint
	degradable         endpoint.Endpoint
	reg                *registry.Registry
	toolkit, bareStats side
	n                  int           // calls made through the protected endpoint
	timeout            time.Duration // of each attempt
}

// run plays the scenario, writing the timeline and the summary to w, and
// returns the output's structure (headings, the layer and kind of every
// timeline entry, the summary's row names) for the golden test.
func run(ctx context.Context, w io.Writer, opts demoOptions) ([]string, error) {
	stack, from, err := loadStack("embedding_api")
	if err != nil {
		return nil, err
	}
	stack = scaleStack(stack, opts.scale)
	if opts.timeout > 0 {
		stack.Timeout.Timeout = opts.timeout
	}
	if opts.reset > 0 {
		stack.CircuitBreaker.ResetTimeout = opts.reset
	}
	tl := newTimeline(w)
	d := &demo{tl: tl, opts: opts, client: newHTTPClient(), reg: registry.New(registry.Config{})}
	defer d.client.CloseIdleConnections()

	// The upstream and its twin inject the same faults; the twin serves the
	// bare endpoint, so both clients see the same kind of trouble.
	quiet := middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	if d.up, err = startUpstream(chaos.New(chaos.Config{Name: "embedding_api", Observer: tl})); err != nil {
		return nil, err
	}
	defer d.up.Close()
	if d.twin, err = startUpstream(chaos.New(chaos.Config{Observer: quiet})); err != nil {
		return nil, err
	}
	defer d.twin.Close()

	stack.Observer = tl
	stack.CircuitBreaker.Registry = d.reg
	mw, err := stack.Build()
	if err != nil {
		return nil, err
	}
	d.protected = mw(clientEndpoint(d.client, d.up.URL))
	degradable := stack
	degradable.Fallback = middleware.FallbackConfig{} // the search path handles the open circuit itself
	if d.degradable, err = degradable.Apply(clientEndpoint(d.client, d.up.URL)); err != nil {
		return nil, err
	}
	d.bare = clientEndpoint(d.client, d.twin.URL)

	fmt.Fprintf(w, "resilience demo: the guide's scenarios over real HTTP, through go-kit transports\n\n")
	fmt.Fprintf(w, "  upstream   embedding API (go-kit HTTP server + chaos.Chaos) on %s\n", d.up.URL.Host)
	fmt.Fprintf(w, "  client     go-kit HTTP client endpoint, stack %q from %s:\n", "embedding_api", from)
	fmt.Fprintf(w, "             %s\n", stack)
	fmt.Fprintf(w, "  bare       the same client without the stack, against a twin upstream with the same faults\n")
	fmt.Fprintf(w, "  time       the guide's delays are scaled down %d×: reset timeout 2m → %s, retry delay 1s → %s, timeout 10s → %s\n",
		opts.scale, stack.CircuitBreaker.ResetTimeout, stack.Retry.Delay, stack.Timeout.Timeout)
	d.timeout = stack.Timeout.Timeout

	steps := []struct {
		title string
		play  func(context.Context) error
	}{
		{"Startup health check: health.Require refuses to start without the embedding API", d.startup},
		{"Healthy traffic", d.healthy},
		{"Transient failures: 30% of requests reset, retries recover them", d.transient},
		{"Outage: the breaker opens, rejects fast, the fallback serves []", d.outage},
		{"Graceful degradation: keyword search while the circuit is open", d.degrade},
		{"Half-open: a probe while the upstream is still down opens the breaker again", d.probeFails},
		{"Recovery: the upstream is back, two probes close the breaker", d.recovery},
		{"Slow upstream: each attempt is cut by the timeout", d.slow},
	}
	for i, s := range steps {
		tl.section(i+1, s.title)
		if err := s.play(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.title, err)
		}
	}
	structure := append(tl.structure, "")
	return append(structure, d.summary(w)...), nil
}

// setChaos sets the faults of the upstream and of its twin.
func (d *demo) setChaos(cfg chaos.Config) error {
	cfg.Seed = d.opts.seed
	twin := cfg
	cfg.Name, cfg.Observer = "embedding_api", d.tl
	twin.Observer = middleware.ObserverFunc(func(context.Context, middleware.Event) {})
	return errors.Join(d.up.Chaos.Set(cfg), d.twin.Chaos.Set(twin))
}

// traffic makes n calls through the protected endpoint, one after another,
// and the same n calls through the bare endpoint at the same time.
func (d *demo) traffic(ctx context.Context, n int) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			req := embedRequest{Texts: []string{fmt.Sprintf("chunk %d", i)}}
			start := time.Now()
			_, err := d.bare(ctx, req)
			d.bareStats.record(time.Since(start), err == nil, err != nil)
		}
	})
	for i := range n {
		d.call(ctx, embedRequest{Texts: []string{fmt.Sprintf("chunk %d", i)}})
	}
	wg.Wait()
}

// call makes one call through the protected endpoint and adds its outcome to
// the timeline.
func (d *demo) call(ctx context.Context, req embedRequest) {
	d.n++
	fallbacks := d.tl.count(middleware.EventFallback)
	start := time.Now()
	resp, err := d.protected(ctx, req)
	took := time.Since(start)
	d.tl.settle(d.reg.States()["embedding_api"].State)
	served := d.tl.count(middleware.EventFallback) > fallbacks
	d.toolkit.record(took, err == nil && !served, err != nil)
	switch {
	case err != nil:
		d.tl.add("client", "error", fmt.Sprintf("call %d: %s (%s)", d.n, short(err), round(took)))
	case served:
		d.tl.add("client", "fallback", fmt.Sprintf("call %d: got [] (%s)", d.n, round(took)))
	default:
		d.tl.add("client", "ok", fmt.Sprintf("call %d: %d embedding (%s)", d.n, len(resp.([][]float32)), round(took)))
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d > 100*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func (d *demo) startup(ctx context.Context) error {
	checker := health.NewChecker(health.Config{DefaultTimeout: time.Second})
	if err := checker.Register(health.Check{Name: "embedding_api", Func: heartbeat(d.client, d.up.URL)}); err != nil {
		return err
	}
	require := func() error {
		err := checker.Require(ctx, "embedding_api")
		if ue, ok := errors.AsType[*health.UnavailableError](err); ok {
			d.tl.add("health", "unavailable", fmt.Sprintf("required services unavailable: %v (%v): a real main would exit(1)", ue.Names, ue.Statuses[0].Error))
			return err
		}
		if err != nil {
			return err
		}
		d.tl.add("health", "pass", "all services healthy, starting pipeline")
		return nil
	}
	if require() == nil {
		return errors.New("the upstream passed its health check before it was ready")
	}
	d.up.ready.Store(true)
	d.twin.ready.Store(true)
	d.tl.add("upstream", "ready", "the embedding API finished warming up")
	// A startup probe tries again for a moment before it gives up.
	var err error
	for range 50 {
		if err = checker.Require(ctx, "embedding_api"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	return require()
}

func (d *demo) healthy(ctx context.Context) error {
	d.traffic(ctx, 5)
	return nil
}

func (d *demo) transient(ctx context.Context) error {
	if err := d.setChaos(chaos.Config{ErrorRate: 0.3}); err != nil {
		return err
	}
	d.traffic(ctx, 8)
	return nil
}

func (d *demo) outage(ctx context.Context) error {
	if err := d.setChaos(chaos.Config{ErrorRate: 1}); err != nil {
		return err
	}
	d.traffic(ctx, 8)
	if s := d.reg.States()["embedding_api"].State; s != registry.StateOpen {
		return fmt.Errorf("breaker is %s after the outage, want open", s)
	}
	return nil
}

func (d *demo) degrade(ctx context.Context) error {
	r := search(ctx, d.degradable, "why retry with backoff")
	d.tl.add("search", r.Mode, fmt.Sprintf("%q: %s; found %q", r.Query, r.Note, r.Results))
	if r.Mode != "keyword" {
		return fmt.Errorf("search mode %s while the circuit is open, want keyword", r.Mode)
	}
	return nil
}

func (d *demo) probeFails(ctx context.Context) error {
	if err := d.tl.waitState(ctx, registry.StateHalfOpen, 20*d.reset()); err != nil {
		return err
	}
	d.traffic(ctx, 1)
	if s := d.reg.States()["embedding_api"].State; s != registry.StateOpen {
		return fmt.Errorf("breaker is %s after a failed probe, want open", s)
	}
	return nil
}

func (d *demo) recovery(ctx context.Context) error {
	if err := d.setChaos(chaos.Config{}); err != nil {
		return err
	}
	d.tl.add("upstream", "recovered", "the embedding API answers again")
	if err := d.tl.waitState(ctx, registry.StateHalfOpen, 20*d.reset()); err != nil {
		return err
	}
	d.traffic(ctx, 3)
	if s := d.reg.States()["embedding_api"].State; s != registry.StateClosed {
		return fmt.Errorf("breaker is %s after recovery, want closed", s)
	}
	r := search(ctx, d.degradable, "why retry with backoff")
	d.tl.add("search", r.Mode, fmt.Sprintf("%q: found %q", r.Query, r.Results))
	return nil
}

func (d *demo) slow(ctx context.Context) error {
	// The guide's slow upstream: 100s (1s scaled), at least three timeouts.
	latency := max(100*time.Second/time.Duration(d.opts.scale), 3*d.timeout)
	if err := d.setChaos(chaos.Config{LatencyRate: 1, Latency: latency}); err != nil {
		return err
	}
	d.traffic(ctx, 2)
	if err := d.setChaos(chaos.Config{}); err != nil {
		return err
	}
	d.tl.add("upstream", "recovered", "the embedding API is fast again")
	d.traffic(ctx, 1)
	return nil
}

func (d *demo) reset() time.Duration {
	return d.reg.States()["embedding_api"].Settings.ResetTimeout
}

// summary prints the summary table and returns its row names.
func (d *demo) summary(w io.Writer) []string {
	tk, bare := &d.toolkit, &d.bareStats
	dash := "-"
	rows := []struct{ name, with, without string }{
		{"calls", fmt.Sprint(tk.calls), fmt.Sprint(bare.calls)},
		{"successes (real answers)", fmt.Sprint(tk.successes), fmt.Sprint(bare.successes)},
		{"errors seen by the caller", fmt.Sprint(tk.errors), fmt.Sprint(bare.errors)},
		{"fallbacks served", fmt.Sprint(d.tl.count(middleware.EventFallback)), dash},
		{"retries", fmt.Sprint(d.tl.count(middleware.EventRetry)), dash},
		{"rejections (circuit open)", fmt.Sprint(d.tl.rejected), dash},
		{"timeouts", fmt.Sprint(d.tl.count(middleware.EventTimeout)), dash},
		{"requests reaching the upstream", fmt.Sprint(d.up.calls.Load()), fmt.Sprint(d.twin.calls.Load())},
		{"p50 latency", round(tk.percentile(0.50)).String(), round(bare.percentile(0.50)).String()},
		{"p99 latency", round(tk.percentile(0.99)).String(), round(bare.percentile(0.99)).String()},
	}
	fmt.Fprintf(w, "\n== Summary: the same traffic with the toolkit and through a bare endpoint\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintf(tw, "\twith the toolkit\tbare endpoint\n")
	names := []string{"== Summary"}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.with, r.without)
		names = append(names, "row "+r.name)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nThe bare endpoint returns every upstream error to its caller and waits out every slow answer;\n"+
		"the toolkit retries the transient errors, stops calling a dead upstream, cuts slow attempts\n"+
		"and serves the fallback, so its caller never sees an error. Run `make serve` to watch it live.\n")
	return names
}

// structureString joins the structure lines for the golden file.
func structureString(lines []string) string { return strings.Join(lines, "\n") + "\n" }
