package health_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/health"
	"github.com/resiliencekit/resilience/registry"
)

// TestBreakerCheck: an open breaker fails the check and names it; a
// half-open one degrades it to a warning; closed passes.
func TestBreakerCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New(registry.Config{})
		api, err := reg.Breaker("embedding_api", registry.Settings{ResetTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Breaker("chromadb", registry.Settings{}); err != nil {
			t.Fatal(err)
		}
		c := health.NewChecker()
		if err := c.Register("circuits", health.BreakerCheck(reg)); err != nil {
			t.Fatal(err)
		}
		if err := c.Register("chromadb circuit", health.BreakerCheck(reg, "chromadb")); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()

		st, _ := c.Check(ctx, "circuits")
		if st.Result != health.Pass {
			t.Errorf("closed: result = %s, want pass (%v)", st.Result, st.Error)
		}

		api.Trip()
		st, _ = c.Check(ctx, "circuits")
		if st.Result != health.Fail || !errors.Is(st.Error, health.ErrCircuitOpen) || !strings.Contains(st.Error.Error(), "embedding_api") {
			t.Errorf("open: result = %s, error = %v, want fail naming embedding_api", st.Result, st.Error)
		}
		if st, _ := c.Check(ctx, "chromadb circuit"); st.Result != health.Pass {
			t.Errorf("check of chromadb only: result = %s, want pass", st.Result)
		}

		time.Sleep(time.Minute) // the reset timeout: half-open
		st, _ = c.Check(ctx, "circuits")
		if st.Result != health.Warn || !st.Healthy || !errors.Is(st.Error, health.ErrDegraded) {
			t.Errorf("half-open: result = %s, healthy = %t, error = %v, want a healthy warning", st.Result, st.Healthy, st.Error)
		}

		api.Reset()
		if st, _ := c.Check(ctx, "circuits"); st.Result != health.Pass {
			t.Errorf("after reset: result = %s, want pass", st.Result)
		}
	})
}
