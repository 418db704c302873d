package health

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/resiliencekit/resilience/registry"
)

// BreakerCheck returns a check that reports the circuit breakers of reg
// named in names (every breaker in reg when names is empty): it fails while
// any of them is open, with an error that names them and matches
// [registry.ErrOpen] (the same value as middleware.ErrCircuitOpen), and warns
// (see [Degraded]) while any is half-open and none is open. A name not (yet)
// in reg counts as closed. A nil reg means [registry.Default]. Register it
// like any check:
//
//	checker.MustRegister(health.Check{Name: "circuits", Func: health.BreakerCheck(nil)})
func BreakerCheck(reg *registry.Registry, names ...string) CheckFunc {
	if reg == nil {
		reg = registry.Default
	}
	names = slices.Clone(names)
	return func(context.Context) error {
		var open, halfOpen []string
		for name, s := range reg.States() {
			if len(names) > 0 && !slices.Contains(names, name) {
				continue
			}
			switch s.State {
			case registry.StateOpen:
				open = append(open, name)
			case registry.StateHalfOpen:
				halfOpen = append(halfOpen, name)
			}
		}
		slices.Sort(open)
		slices.Sort(halfOpen)
		if len(open) > 0 {
			return fmt.Errorf("health: %s: %w", strings.Join(open, ", "), registry.ErrOpen)
		}
		if len(halfOpen) > 0 {
			return Degraded(fmt.Errorf("health: circuit half-open: %s", strings.Join(halfOpen, ", ")))
		}
		return nil
	}
}
