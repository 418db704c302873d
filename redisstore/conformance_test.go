package redisstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/internal/redistest"
	"github.com/resiliencekit/resilience/redisstore"
	"github.com/resiliencekit/resilience/registry"
	"github.com/resiliencekit/resilience/registry/registrytest"
)

// TestConformance checks breakers shared through Redis (three replicas, a
// key prefix of their own per case) against registrytest's reference
// model, in real time: Redis keeps its own clock. Without redis-server it
// skips, and fails under CI=true (redistest.Start).
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	registrytest.Run(t, registrytest.Harness{
		NewStore: func(t *testing.T) registry.Store {
			return newStore(t, srv.Addr, redisstore.Config{Prefix: fmt.Sprintf("conformance%d:", n.Add(1)), Timeout: time.Second})
		},
		Replicas: 3,
		RealTime: true,
		Margin:   50 * time.Millisecond,
	})
}
