//go:build pending

package middleware_test

import (
	"math"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

// Regression (pending a fix in breaker.go, which this suite may not edit):
// a WindowBuckets past registry.MaxWindowBuckets is reported by
// BreakerConfig.Validate as a problem of Window ("window: must be at least
// window_buckets nanoseconds"), not of WindowBuckets. Run with
// `go test -tags pending ./middleware`.
func TestBreakerConfigHugeWindowBucketsNamesField(t *testing.T) {
	tests := []struct {
		name    string
		buckets int
	}{
		{name: "max int", buckets: math.MaxInt},
		{name: "one past the cap", buckets: registry.MaxWindowBuckets + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := middleware.BreakerConfig{Name: "x", FailureRatio: 0.5, Window: time.Hour, WindowBuckets: tt.buckets}
			err := cfg.Validate()
			if !namesField(err, "BreakerConfig.WindowBuckets") {
				t.Errorf("Validate() = %v, want ErrInvalidConfig naming BreakerConfig.WindowBuckets", err)
			}
			if namesField(err, "BreakerConfig.Window") {
				t.Errorf("Validate() = %v, names BreakerConfig.Window, which is valid", err)
			}
		})
	}
}
