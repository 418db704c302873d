package endpointtest_test

import (
	"context"
	"testing"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
)

func TestBaseline(t *testing.T) {
	ep := endpointtest.Baseline()
	resp, err := ep(t.Context(), "req")
	if err != nil || resp != (struct{}{}) {
		t.Errorf("Baseline()(req) = %v, %v, want struct{}{}, nil (endpoint.Nop's answer)", resp, err)
	}
	ctx := context.Background()
	if allocs := testing.AllocsPerRun(100, func() { _, _ = ep(ctx, nil) }); allocs != 0 {
		t.Errorf("allocs per call = %v, want 0", allocs)
	}
}

func BenchmarkBaseline(b *testing.B) {
	ep := endpointtest.Baseline()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = ep(ctx, nil)
	}
}
