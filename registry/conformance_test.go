package registry_test

import (
	"testing"

	"github.com/resiliencekit/resilience/registry"
	"github.com/resiliencekit/resilience/registry/registrytest"
)

// TestConformance checks local breakers and breakers shared through a
// MemoryStore (one registry, and three replicas on one store) against the
// reference model of registrytest, in fake time.
func TestConformance(t *testing.T) {
	memory := func(*testing.T) registry.Store { return registry.NewMemoryStore() }
	t.Run("local", func(t *testing.T) { registrytest.Run(t, registrytest.Harness{}) })
	t.Run("memory", func(t *testing.T) { registrytest.Run(t, registrytest.Harness{NewStore: memory}) })
	t.Run("memory-replicas", func(t *testing.T) { registrytest.Run(t, registrytest.Harness{NewStore: memory, Replicas: 3}) })
}
