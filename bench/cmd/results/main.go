// Command results turns the raw output of the bench suite
// (BenchmarkSuite/row=…/impl=…/mode=…, several -count runs) into
// RESULTS.md: one table per row with medians of ns/op, B/op and allocs/op,
// each entry's ratio to the go-kit Chain of one no-op middleware measured in
// the same run and mode, the targets checked, and the profile notes
// appended.
//
//	go run ./cmd/results -o RESULTS.md -notes notes.md results.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/perf/benchfmt"
	"golang.org/x/perf/benchmath"
)

// key identifies one benchmark of the suite.
type key struct{ row, impl, mode string }

// stat is the summary of one benchmark's samples.
type stat struct {
	ns, bytes, allocs benchmath.Summary
	best              float64 // the fastest sample's ns/op: noise only ever adds time
	n                 int
}

type results struct {
	stats  map[key]*stat
	order  map[string][]string // row -> impls, in the order first seen
	rows   []string
	config map[string]string // cpu, goos, goarch, pkg
}

// rowTitles names the rows, in the order the issue lists them.
var rowTitles = []struct{ row, title string }{
	{"floor", "Floor: a direct call, go-kit Chain of 1 and 3 no-op middlewares"},
	{"breaker_closed", "Circuit breaker, closed: success"},
	{"breaker_open", "Circuit breaker, open: rejection"},
	{"retry_first_try", "Retry: success on the first try"},
	{"retry_2_failures", "Retry: two failures, then success (no delay)"},
	{"timeout_success", "Cooperative timeout: success"},
	{"ratelimit_allow", "Rate limit: allowed"},
	{"bulkhead_admit", "Bulkhead: admitted"},
	{"fallback_success", "Fallback value: success (not used)"},
	{"recover_success", "Recover: success (no panic)"},
	{"stack_success", "The guide's stack (FallbackValue, CircuitBreaker, Retry): success"},
	{"stack_open", "The guide's stack while the breaker is open: the fallback is served"},
	{"depth", "Depth: chains of 1, 2, 4 and 8 layers"},
	{"registry_size", "A closed breaker's success with 1 and with 10,000 breakers registered"},
}

// ours are the contenders of this module (bold in the tables).
func ours(row, impl string) bool {
	if isFloor(impl) {
		return false
	}
	switch row {
	case "floor", "depth", "registry_size":
		return false
	case "stack_success", "stack_open":
		return !strings.HasPrefix(impl, "failsafe")
	}
	return impl == "resilience"
}

func main() {
	out := flag.String("o", "RESULTS.md", "the Markdown file to write")
	notes := flag.String("notes", "", "a Markdown file appended as the notes (profile evidence)")
	meta := flag.String("meta", "", "how the run was made, quoted in the header (e.g. \"-count 6 -benchtime 200ms\")")
	flag.Parse()
	if flag.NArg() == 0 {
		log.Fatal("usage: results [-o RESULTS.md] [-notes notes.md] [-meta text] results.txt...")
	}
	res, err := read(flag.Args())
	if err != nil {
		log.Fatal(err)
	}
	var b strings.Builder
	res.write(&b, *meta, flag.Args())
	if *notes != "" {
		n, err := os.ReadFile(*notes)
		if err != nil {
			log.Fatal(err)
		}
		b.WriteString("\n")
		b.Write(n)
	}
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}

func read(files []string) (*results, error) {
	samples := map[key]*[3][]float64{}
	res := &results{stats: map[key]*stat{}, order: map[string][]string{}, config: map[string]string{}}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		r := benchfmt.NewReader(bufio.NewReader(f), name)
		for r.Scan() {
			br, ok := r.Result().(*benchfmt.Result)
			if !ok {
				continue // a syntax error or a unit line: skip
			}
			for _, c := range br.Config {
				if c.File {
					res.config[c.Key] = string(c.Value)
				}
			}
			k, ok := parseName(string(br.Name.Full()))
			if !ok {
				continue
			}
			s := samples[k]
			if s == nil {
				s = new([3][]float64)
				samples[k] = s
				if _, seen := res.order[k.row]; !seen {
					res.rows = append(res.rows, k.row)
				}
				if !slices.Contains(res.order[k.row], k.impl) {
					res.order[k.row] = append(res.order[k.row], k.impl)
				}
			}
			for i, unit := range []string{"sec/op", "B/op", "allocs/op"} {
				if v, ok := br.Value(unit); ok {
					s[i] = append(s[i], v)
				}
			}
		}
		f.Close()
		if err := r.Err(); err != nil {
			return nil, err
		}
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("no BenchmarkSuite results in %v", files)
	}
	for k, s := range samples {
		sum := func(vs []float64) benchmath.Summary {
			if len(vs) == 0 {
				return benchmath.Summary{Center: math.NaN()}
			}
			return benchmath.AssumeNothing.Summary(benchmath.NewSample(vs, &benchmath.DefaultThresholds), 0.95)
		}
		st := &stat{ns: sum(s[0]), bytes: sum(s[1]), allocs: sum(s[2]), best: slices.Min(s[0]) * 1e9, n: len(s[0])}
		st.ns.Center *= 1e9 // sec/op (benchfmt's unit) to ns/op
		st.ns.Lo *= 1e9
		st.ns.Hi *= 1e9
		res.stats[k] = st
	}
	return res, nil
}

// parseName splits "Suite/row=r/impl=i/mode=m-2" into its keys.
func parseName(full string) (key, bool) {
	full = strings.TrimPrefix(full, "Benchmark")
	if i := strings.LastIndexByte(full, '-'); i > 0 && !strings.ContainsAny(full[i+1:], "/=") {
		full = full[:i]
	}
	var k key
	parts := strings.Split(full, "/")
	if parts[0] != "Suite" {
		return k, false
	}
	for _, p := range parts[1:] {
		name, value, _ := strings.Cut(p, "=")
		switch name {
		case "row":
			k.row = value
		case "impl":
			k.impl = value
		case "mode":
			k.mode = value
		}
	}
	return k, k.row != "" && k.impl != "" && k.mode != ""
}

func (r *results) get(row, impl, mode string) *stat { return r.stats[key{row, impl, mode}] }

// ns returns the median ns/op of a benchmark, or NaN.
func (r *results) ns(row, impl, mode string) float64 {
	if s := r.get(row, impl, mode); s != nil {
		return s.ns.Center
	}
	return math.NaN()
}

// best returns the fastest sample of a benchmark, or NaN.
func (r *results) best(row, impl, mode string) float64 {
	if s := r.get(row, impl, mode); s != nil {
		return s.best
	}
	return math.NaN()
}

// bestBase is base for the fastest samples.
func (r *results) bestBase(row, impl, mode string) float64 {
	if r.get(row, impl, mode) != nil {
		return r.best(row, impl, mode)
	}
	return r.best("floor", impl, mode)
}

func (r *results) allocs(row, impl, mode string) float64 {
	if s := r.get(row, impl, mode); s != nil {
		return s.allocs.Center
	}
	return math.NaN()
}

// ratio is a benchmark's ratio to the 1-nop Chain in the same mode: the one
// run in the same row, moments apart, or else the floor row's.
func (r *results) ratio(row, impl, mode string) float64 {
	return r.ns(row, impl, mode) / r.base(row, "chain1nop", mode)
}

// base returns the median of a floor contender (chain1nop, chain3nop) of
// row, or of the floor row when row has none.
func (r *results) base(row, impl, mode string) float64 {
	if r.get(row, impl, mode) != nil {
		return r.ns(row, impl, mode)
	}
	return r.ns("floor", impl, mode)
}

// isFloor reports whether impl is a floor contender.
func isFloor(impl string) bool {
	return strings.HasPrefix(impl, "chain") && strings.HasSuffix(impl, "nop")
}

func fmtNs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtRatio(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v < 10:
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%.0fx", v)
}

func fmtCount(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f", v)
}

func (r *results) write(w io.Writer, meta string, files []string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	n := 0
	for _, s := range r.stats {
		n = max(n, s.n)
	}
	p("# Benchmark results\n\n")
	p("Written by `make bench` (bench/cmd/results) from `%s`: one run of the whole suite, ", strings.Join(files, "`, `"))
	p("%s, %s/%s, %s", orDash(r.config["cpu"]), orDash(r.config["goos"]), orDash(r.config["goarch"]), runtime.Version())
	if meta != "" {
		p(", `%s`", meta)
	}
	p(".\n\nEach figure is the median of %d runs (benchstat's summary; ± is its 95%% confidence interval). ", n)
	p("**×1-nop** is the ratio to a go-kit `endpoint.Chain` of one no-op middleware around `endpoint.Nop` ")
	p("measured in the same run and the same mode (serial with serial, parallel with parallel): ")
	p("these machines are shared and noisy, so compare ratios within this file, never absolute times across runs. ")
	p("*parallel* is `b.RunParallel` on GOMAXPROCS=2: ns per call over both CPUs. ")
	p("Every contender wraps the same endpoint and is built once, outside the timed loop. Ours are in bold.\n\n")
	p("Reproduce: `make bench` (a few minutes), or one row: `cd bench && go test -run '^$' -bench 'Suite/row=breaker_closed' -benchmem -count 6`; ")
	p("tabulate with `cd bench && go tool benchstat -table /row -row /impl -col /mode results.txt`.\n\n")

	r.writeHeadline(w)
	r.writeTargets(w)

	p("## Rows\n\n")
	for _, rt := range rowTitles {
		if _, ok := r.order[rt.row]; !ok {
			continue
		}
		p("### `%s`: %s\n\n", rt.row, rt.title)
		r.writeRow(w, rt.row)
	}
	for _, row := range r.rows { // rows this program has no title for
		if !slices.ContainsFunc(rowTitles, func(t struct{ row, title string }) bool { return t.row == row }) {
			p("### `%s`\n\n", row)
			r.writeRow(w, row)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func (r *results) writeRow(w io.Writer, row string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("| contender | ns/op | ×1-nop | ns/op parallel | ×1-nop parallel | B/op | allocs/op |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	impls := slices.Clone(r.order[row])
	if row != "depth" {
		slices.SortStableFunc(impls, func(a, b string) int {
			return cmpFloat(r.ns(row, a, "serial"), r.ns(row, b, "serial"))
		})
	}
	line := func(label, row, impl string) {
		s, par := r.get(row, impl, "serial"), r.get(row, impl, "parallel")
		nsCell := func(s *stat) string {
			if s == nil {
				return "—"
			}
			return fmtNs(s.ns.Center) + " ±" + s.ns.PctRangeString()
		}
		mem := func(pick func(*stat) benchmath.Summary) string {
			switch {
			case s == nil && par == nil:
				return "—"
			case s == nil:
				return fmtCount(pick(par).Center)
			case par == nil || fmtCount(pick(s).Center) == fmtCount(pick(par).Center):
				return fmtCount(pick(s).Center)
			}
			return fmtCount(pick(s).Center) + " / " + fmtCount(pick(par).Center)
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", label,
			nsCell(s), fmtRatio(r.ratio(row, impl, "serial")),
			nsCell(par), fmtRatio(r.ratio(row, impl, "parallel")),
			mem(func(s *stat) benchmath.Summary { return s.bytes }),
			mem(func(s *stat) benchmath.Summary { return s.allocs }))
	}
	for _, impl := range impls {
		label := "`" + impl + "`"
		switch {
		case ours(row, impl):
			label = "**" + label + "**"
		case isFloor(impl) || strings.HasPrefix(impl, "bare_"):
			label = "*" + label + " (floor)*"
		}
		line(label, row, impl)
	}
	p("\n")
}

func cmpFloat(a, b float64) int {
	switch {
	case math.IsNaN(a) && math.IsNaN(b):
		return 0
	case math.IsNaN(a):
		return 1
	case math.IsNaN(b):
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// writeHeadline prints, per row, ours against the fastest peer.
func (r *results) writeHeadline(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## Headline\n\n")
	p("Serial ns/op, ratio to the 1-nop Chain, allocs/op; ours against the fastest peer in the same row.\n\n")
	p("| row | resilience | fastest peer | next peers |\n|---|---|---|---|\n")
	headline := []struct{ row, ours string }{
		{"breaker_closed", "resilience"},
		{"breaker_open", "resilience"},
		{"retry_first_try", "resilience"},
		{"retry_2_failures", "resilience"},
		{"timeout_success", "resilience"},
		{"ratelimit_allow", "resilience"},
		{"bulkhead_admit", "resilience"},
		{"fallback_success", "resilience"},
		{"stack_success", "hand"},
		{"stack_open", "hand"},
	}
	cell := func(row, impl string) string {
		return fmt.Sprintf("%s ns, %s, %s allocs", fmtNs(r.ns(row, impl, "serial")), fmtRatio(r.ratio(row, impl, "serial")), fmtCount(r.allocs(row, impl, "serial")))
	}
	for _, h := range headline {
		if r.get(h.row, h.ours, "serial") == nil {
			continue
		}
		var peers []string
		for _, impl := range r.order[h.row] {
			if !ours(h.row, impl) && !isFloor(impl) && !strings.HasPrefix(impl, "bare_") && impl != "chan_semaphore" {
				peers = append(peers, impl)
			}
		}
		slices.SortFunc(peers, func(a, b string) int { return cmpFloat(r.ns(h.row, a, "serial"), r.ns(h.row, b, "serial")) })
		best, next := "—", ""
		if len(peers) > 0 {
			best = "`" + peers[0] + "`: " + cell(h.row, peers[0])
			var rest []string
			for _, pr := range peers[1:] {
				rest = append(rest, fmt.Sprintf("`%s` %s", pr, fmtRatio(r.ratio(h.row, pr, "serial"))))
			}
			next = strings.Join(rest, ", ")
		}
		label := h.ours
		if label != "resilience" {
			label = "`" + label + "`: "
		} else {
			label = ""
		}
		p("| `%s` | **%s%s** | %s | %s |\n", h.row, label, cell(h.row, h.ours), best, next)
	}
	p("\n")
}

// target is one of the targets, checked on this run's medians and
// on its fastest samples.
type target struct {
	name             string
	median, best     string
	holds, holdsBest bool
}

// estimate picks a figure of a benchmark: its median or its fastest sample.
type estimate struct {
	ns   func(row, impl, mode string) float64
	base func(row, impl, mode string) float64
}

func (r *results) writeTargets(w io.Writer) {
	med := estimate{r.ns, r.base}
	best := estimate{r.best, r.bestBase}
	var ts []target
	add := func(name string, check func(e estimate) (string, bool)) {
		m, mh := check(med)
		b, bh := check(best)
		ts = append(ts, target{name: name, median: m, best: b, holds: mh, holdsBest: bh})
	}
	ratio := func(name, row, impl, refImpl string, limit float64) {
		a := r.allocs(row, impl, "serial")
		add(name, func(e estimate) (string, bool) {
			v, ref := e.ns(row, impl, "serial"), e.base(row, refImpl, "serial")
			return fmt.Sprintf("%s (%s vs %s ns), %s allocs", fmtRatio(v/ref), fmtNs(v), fmtNs(ref), fmtCount(a)), v/ref <= limit && a == 0
		})
	}
	ratio("breaker closed success ≤ 2x the 1-nop Chain, 0 allocs", "breaker_closed", "resilience", "chain1nop", 2)
	ratio("breaker open rejection ≤ 1.5x the 1-nop Chain, 0 allocs", "breaker_open", "resilience", "chain1nop", 1.5)
	ratio("retry first-try success ≤ 1.2x the 1-nop Chain, 0 allocs", "retry_first_try", "resilience", "chain1nop", 1.2)
	ratio("guide's stack, hand-chained, ≤ 2x the 3-nop Chain, 0 allocs", "stack_success", "hand", "chain3nop", 2)
	ratio("guide's stack, by Stack, ≤ 2x the 3-nop Chain, 0 allocs", "stack_success", "stack", "chain3nop", 2)
	add("cooperative timeout ≤ 1.1x a bare WithTimeoutCause + cancel", func(e estimate) (string, bool) {
		v, ref := e.ns("timeout_success", "resilience", "serial"), e.ns("timeout_success", "bare_WithTimeoutCause", "serial")
		return fmt.Sprintf("%s (%s vs %s ns)", fmtRatio(v/ref), fmtNs(v), fmtNs(ref)), v/ref <= 1.1
	})
	for _, l := range []struct{ row, impl string }{
		{"breaker_closed", "resilience"}, {"breaker_open", "resilience"}, {"retry_first_try", "resilience"},
		{"timeout_success", "resilience"}, {"ratelimit_allow", "resilience"}, {"bulkhead_admit", "resilience"},
		{"fallback_success", "resilience"}, {"recover_success", "resilience"}, {"stack_success", "hand"}, {"stack_success", "stack"},
	} {
		add(fmt.Sprintf("`%s/%s`: RunParallel per call ≤ serial", l.row, l.impl), func(e estimate) (string, bool) {
			s, par := e.ns(l.row, l.impl, "serial"), e.ns(l.row, l.impl, "parallel")
			return fmt.Sprintf("%s vs %s ns (%s)", fmtNs(par), fmtNs(s), fmtRatio(par/s)), par <= s
		})
	}
	for _, mode := range []string{"serial", "parallel"} {
		add("1 vs 10,000 registered breakers within 5%, "+mode, func(e estimate) (string, bool) {
			one, many := e.ns("registry_size", "breakers_1", mode), e.ns("registry_size", "breakers_10000", mode)
			return fmt.Sprintf("%s vs %s ns (%+.1f%%)", fmtNs(one), fmtNs(many), 100*(many/one-1)), math.Abs(many/one-1) <= 0.05
		})
	}
	for _, kind := range []string{"nop", "retry", "breaker", "guide"} {
		add(fmt.Sprintf("linear in depth: %s ×1, ×2, ×4, ×8 within 10%% of a straight line", kind), func(e estimate) (string, bool) {
			slope, worst, ok := r.linearity(e, kind)
			if !ok {
				return "—", false
			}
			return fmt.Sprintf("%s ns per layer; worst point %.0f%% off", fmtNs(slope), 100*worst), worst <= 0.10
		})
	}
	fmt.Fprintf(w, "## Targets (issue 8)\n\n")
	fmt.Fprintf(w, "Checked on the medians, and on the fastest of the %s samples (noise on a shared machine only ever adds time, so the fastest sample is the closer estimate of a path's own cost).\n\n", "runs'")
	fmt.Fprintf(w, "| target | medians | holds | fastest samples | holds |\n|---|---|:---:|---|:---:|\n")
	mark := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	for _, t := range ts {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", t.name, t.median, mark(t.holds), t.best, mark(t.holdsBest))
	}
	fmt.Fprintf(w, "\nWhere a target does not hold, the notes at the end give the profile's evidence.\n\n")
}

// linearity fits ns = a + b·n to the serial depth row of kind and returns b
// and the largest relative distance of a point from the fit.
func (r *results) linearity(e estimate, kind string) (slope, worst float64, ok bool) {
	var xs, ys []float64
	for _, n := range []int{1, 2, 4, 8} {
		v := e.ns("depth", fmt.Sprintf("%s_x%d", kind, n), "serial")
		if math.IsNaN(v) {
			return 0, 0, false
		}
		xs, ys = append(xs, float64(n)), append(ys, v)
	}
	var mx, my float64
	for i := range xs {
		mx, my = mx+xs[i], my+ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(xs))
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	slope = sxy / sxx
	icpt := my - slope*mx
	for i := range xs {
		fit := icpt + slope*xs[i]
		worst = math.Max(worst, math.Abs(ys[i]-fit)/ys[i])
	}
	return slope, worst, true
}
