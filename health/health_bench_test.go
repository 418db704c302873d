package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/health"
)

// benchChecker returns a checker with three instant checks, one of them
// failing when fail is true, started in the background when cached is true.
func benchChecker(b *testing.B, fail, cached bool) *health.Checker {
	b.Helper()
	c := health.NewChecker(health.Config{})
	c.MustRegister(health.Check{Name: "chromadb", Func: ok})
	c.MustRegister(health.Check{Name: "embedding_api", Func: ok})
	last := ok
	if fail {
		last = func(context.Context) error { return errors.New("down") }
	}
	c.MustRegister(health.Check{Name: "filesystem", Func: last})
	if cached {
		if err := c.Start(b.Context(), time.Hour); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(c.Stop)
		for c.Require(b.Context(), "chromadb", "embedding_api") != nil {
			time.Sleep(time.Millisecond) // wait for the first run
		}
	}
	return c
}

var benchCases = []struct {
	name         string
	fail, cached bool
}{
	{name: "on_demand/pass"},
	{name: "on_demand/fail", fail: true},
	{name: "cached/pass", cached: true},
	{name: "cached/fail", fail: true, cached: true},
}

func BenchmarkCheckAll(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			c := benchChecker(b, bc.fail, bc.cached)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if got := len(c.CheckAll(ctx)); got != 3 {
					b.Fatalf("len = %d, want 3", got)
				}
			}
		})
	}
}

func BenchmarkHandler(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			h := health.Handler(benchChecker(b, bc.fail, bc.cached), health.HandlerConfig{})
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
			want := http.StatusOK
			if bc.fail {
				want = http.StatusServiceUnavailable
			}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != want {
					b.Fatalf("code = %d, want %d", rec.Code, want)
				}
			}
		})
	}
}
