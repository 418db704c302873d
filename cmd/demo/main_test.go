package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/policy"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/demo.golden")

// TestDemoGolden pins the structure of the demo's output: the section
// headings, the layer and kind of every timeline entry in order, and the
// summary's row names. Times, latencies and counts vary from run to run and
// are left out; the faults are seeded, so the entries do not. The demo runs
// in an empty directory: it reads nothing from the working directory or
// above it, so `go run` and an installed binary work from anywhere.
func TestDemoGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("the scenario takes about 9 seconds")
	}
	golden, err := filepath.Abs(filepath.Join("testdata", "demo.golden"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	var out bytes.Buffer
	// The demo's scenario, with more headroom for a loaded machine: each
	// attempt may take 300ms (not 100ms) before the timeout cuts it, and the
	// breaker stays open 2.5s (not 1.2s) while the outage's calls run.
	opts := defaultDemoOptions
	opts.timeout, opts.reset = 300*time.Millisecond, 2500*time.Millisecond
	structure, err := run(context.Background(), &out, opts)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := structureString(structure)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/demo -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("demo output's structure differs from %s (run go test ./cmd/demo -update after checking):\n%s\nfull output:\n%s", golden, got, out.String())
	}
	// The printed output carries what the structure leaves out.
	for _, s := range []string{
		"scaled down 100×: reset timeout 2m → 2.5s, retry delay 1s → 10ms, timeout 10s → 300ms",
		"fallback(value []) → circuit_breaker(embedding_api) → retry(3 attempts) → timeout(300ms) → endpoint",
		"p99 latency",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
}

// TestEmbeddedPolicies keeps the embedded copy of the policy file equal to
// testdata/policies.yaml.
func TestEmbeddedPolicies(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", "policies.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(embeddedPolicies, want) {
		t.Errorf("cmd/demo/policies.yaml differs from testdata/policies.yaml: copy it over")
	}
}

// TestLoadStackFromAnyDirectory checks that the demo's stack comes from the
// embedded policy file wherever the demo runs: nothing is read from the
// working directory or searched for above it.
func TestLoadStackFromAnyDirectory(t *testing.T) {
	for _, dir := range []string{"", t.TempDir(), filepath.Join("..", "..")} {
		t.Run(fmt.Sprintf("dir %q", dir), func(t *testing.T) {
			if dir != "" {
				t.Chdir(dir)
			}
			s, from, err := loadStack("embedding_api")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(from, "built into the demo") {
				t.Errorf("from = %q, want the embedded copy", from)
			}
			if s.CircuitBreaker.Name != "embedding_api" || s.Retry.MaxAttempts != 3 || s.Timeout.Timeout != 10*time.Second {
				t.Errorf("stack = %+v, want the guide's embedding_api stack", s)
			}
			// The fallback value is decoded for the client endpoint's [][]float32.
			if v, ok := s.Fallback.Value.([][]float32); !ok || len(v) != 0 {
				t.Errorf("fallback value = %#v, want an empty [][]float32", s.Fallback.Value)
			}
		})
	}
}

func TestLoadStackUnknownName(t *testing.T) {
	if _, _, err := loadStack("no_such_stack"); !errors.Is(err, policy.ErrUnknownStack) {
		t.Errorf("loadStack(no_such_stack) err = %v, want policy.ErrUnknownStack", err)
	}
}

func TestCLIRejectsUnknownCommand(t *testing.T) {
	var stderr bytes.Buffer
	if err := cli(context.Background(), []string{"frobnicate"}, &bytes.Buffer{}, &stderr); err == nil {
		t.Errorf("cli(frobnicate) = nil, want an error")
	}
}
