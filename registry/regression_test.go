package registry_test

import (
	"errors"
	"math"
	"testing"

	"github.com/resiliencekit/resilience/registry"
)

// Regression: a ratio rule with a huge WindowBuckets passed Validate, and
// Registry.Breaker then panicked in gobreaker ("makeslice: len out of
// range"), or allocated one set of counts per bucket: gigabytes for a
// number read from a policy file. Found by TestBadConfigs.
func TestHugeWindowBucketsRejectedNotPanicking(t *testing.T) {
	tests := []struct {
		name    string
		buckets int
		wantErr bool
	}{
		{name: "max int", buckets: math.MaxInt, wantErr: true},
		{name: "one past the cap", buckets: registry.MaxWindowBuckets + 1, wantErr: true},
		{name: "the cap", buckets: registry.MaxWindowBuckets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := registry.Settings{FailureRatio: 0.5, Window: registry.MaxDuration, WindowBuckets: tt.buckets}
			if err := s.Validate(); (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, registry.ErrInvalidSettings)) {
				t.Errorf("Validate() = %v, want error %v matching ErrInvalidSettings", err, tt.wantErr)
			}
			var err error
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("Breaker panicked: %v", v)
					}
				}()
				_, err = registry.New(registry.Config{}).Breaker("huge", s)
			}()
			if (err != nil) != tt.wantErr {
				t.Errorf("Breaker() err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
