package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		full string
		want key
		ok   bool
	}{
		{"suite", "BenchmarkSuite/row=breaker_open/impl=resilience/mode=serial-2", key{"breaker_open", "resilience", "serial"}, true},
		{"no procs suffix", "Suite/row=floor/impl=chain1nop/mode=parallel", key{"floor", "chain1nop", "parallel"}, true},
		{"dash in impl", "BenchmarkSuite/row=stack_success/impl=hand+timeout/mode=serial-8", key{"stack_success", "hand+timeout", "serial"}, true},
		{"other benchmark", "BenchmarkBreaker/success-2", key{}, false},
		{"missing mode", "BenchmarkSuite/row=floor/impl=direct-2", key{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseName(tt.full)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("parseName(%q) = %v, %t, want %v, %t", tt.full, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestReadAndWrite reads two passes of a tiny suite and checks the medians,
// the ratio to the row's own 1-nop Chain and a target's verdict.
func TestReadAndWrite(t *testing.T) {
	pass := `goos: linux
goarch: amd64
pkg: github.com/resiliencekit/resilience/bench
cpu: Test CPU
BenchmarkSuite/row=floor/impl=chain1nop/mode=serial-2   	1000	  4.000 ns/op	 0 B/op	 0 allocs/op
BenchmarkSuite/row=breaker_open/impl=chain1nop/mode=serial-2   	1000	  2.000 ns/op	 0 B/op	 0 allocs/op
BenchmarkSuite/row=breaker_open/impl=resilience/mode=serial-2  	1000	  %s ns/op	 0 B/op	 0 allocs/op
BenchmarkSuite/row=breaker_open/impl=failsafe/mode=serial-2    	1000	  600 ns/op	 432 B/op	 14 allocs/op
PASS
`
	path := filepath.Join(t.TempDir(), "results.txt")
	in := strings.Replace(pass, "%s", "2.500", 1) + strings.Replace(pass, "%s", "3.500", 1) + strings.Replace(pass, "%s", "2.900", 1)
	if err := os.WriteFile(path, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := read([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.ns("breaker_open", "resilience", "serial"), 2.9; math.Abs(got-want) > 1e-9 {
		t.Errorf("median = %v, want %v", got, want)
	}
	if got, want := res.best("breaker_open", "resilience", "serial"), 2.5; math.Abs(got-want) > 1e-9 {
		t.Errorf("best = %v, want %v", got, want)
	}
	// The row's own chain1nop (2 ns), not the floor row's (4 ns).
	if got, want := res.ratio("breaker_open", "resilience", "serial"), 1.45; math.Abs(got-want) > 1e-9 {
		t.Errorf("ratio = %v, want %v", got, want)
	}
	var b strings.Builder
	res.write(&b, "test", []string{"results.txt"})
	out := b.String()
	for _, want := range []string{
		"Test CPU",
		"| breaker open rejection ≤ 1.5x the 1-nop Chain, 0 allocs | 1.45x (2.90 vs 2.00 ns), 0 allocs | yes | 1.25x (2.50 vs 2.00 ns), 0 allocs | yes |",
		"| **`resilience`** | 2.90 ",
		"| `failsafe` | 600 ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestLinearity(t *testing.T) {
	tests := []struct {
		name       string
		ns         [4]float64 // depth 1, 2, 4, 8
		wantSlope  float64
		wantLinear bool // within 10% of the fit
	}{
		{"exactly linear", [4]float64{3, 5, 9, 17}, 2, true},
		{"within 10%", [4]float64{3.2, 5, 9, 17}, 1.98, true},
		{"the last layer doubles", [4]float64{3, 5, 9, 25}, 3.18, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &results{stats: map[key]*stat{}}
			for i, n := range []string{"x_x1", "x_x2", "x_x4", "x_x8"} {
				s := &stat{best: tt.ns[i]}
				s.ns.Center = tt.ns[i]
				r.stats[key{"depth", n, "serial"}] = s
			}
			slope, worst, ok := r.linearity(estimate{r.ns, r.base}, "x")
			if !ok {
				t.Fatal("linearity: not ok")
			}
			if math.Abs(slope-tt.wantSlope) > 0.05 {
				t.Errorf("slope = %v, want %v", slope, tt.wantSlope)
			}
			if got := worst <= 0.10; got != tt.wantLinear {
				t.Errorf("worst point %.0f%% off: linear = %t, want %t", 100*worst, got, tt.wantLinear)
			}
		})
	}
}
