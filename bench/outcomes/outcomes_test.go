package outcomes_test

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/bench/outcomes"
)

var write = flag.Bool("outcomes.write", false, "write ../OUTCOMES.md from the runs (make outcomes)")

const seed = 15

// runAll runs every scenario with every contender, each run in a bubble of
// its own.
func runAll(t *testing.T, scenarios []outcomes.Scenario) [][]*outcomes.Run {
	t.Helper()
	var all [][]*outcomes.Run
	for _, s := range scenarios {
		var runs []*outcomes.Run
		for _, c := range outcomes.Contenders() {
			var r *outcomes.Run
			synctest.Test(t, func(t *testing.T) {
				var err error
				if r, err = outcomes.RunScenario(s, c, seed); err != nil {
					t.Fatal(err)
				}
			})
			runs = append(runs, r)
		}
		all = append(all, runs)
	}
	return all
}

func tables(all [][]*outcomes.Run) []byte {
	var b bytes.Buffer
	outcomes.Write(&b, seed, all)
	return b.Bytes()
}

func TestOutcomes(t *testing.T) {
	scenarios, err := outcomes.LoadScenarios("testdata/scenarios.json")
	if err != nil {
		t.Fatal(err)
	}
	first := runAll(t, scenarios)
	if t.Failed() {
		return
	}
	got := tables(first)
	if again := tables(runAll(t, scenarios)); !bytes.Equal(again, got) {
		t.Errorf("two runs with seed %d gave different tables:\n%s\nthen:\n%s", seed, got, again)
	}
	if *write {
		if err := os.WriteFile("../OUTCOMES.md", got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote bench/OUTCOMES.md")
	}

	for i, s := range scenarios {
		for _, r := range first[i] {
			if r.Contender != "resilience" {
				continue
			}
			t.Run(s.Name, func(t *testing.T) {
				checkOurs(t, r)
			})
		}
	}
}

// checkOurs asserts what must always hold for this toolkit's stack.
func checkOurs(t *testing.T, r *outcomes.Run) {
	s := r.Scenario
	deadline := time.Duration(s.Deadline)
	if m := r.Whole(); m.Max > deadline {
		t.Errorf("slowest call took %v, want at most the deadline %v", m.Max, deadline)
	}
	if s.Fault.Kind != outcomes.FaultFail {
		return
	}
	detected, ok := r.Detected()
	if !ok {
		t.Fatalf("the breaker rejected no call during the %v outage", s.Fault.Window())
	}
	start, end := time.Duration(s.Fault.Start), time.Duration(s.Fault.End)
	// The breaker opens on the 5th consecutive failed call; each failed
	// call is 3 fast failures 150ms apart, so the breaker must have opened
	// within a second of the fault.
	if detected-start > time.Second {
		t.Errorf("first rejection %v after the fault began, want within 1s", detected-start)
	}
	after := r.Measure(detected, end)
	// After detection the dependency sees only probes: at most one round
	// of probes (SuccessThreshold 2, each with its retries) per reset.
	probes := int((end-detected)/(10*time.Second)+1) * 2 * 3
	if after.DepCalls > probes {
		t.Errorf("dependency calls after detection = %d, want at most %d (probes)", after.DepCalls, probes)
	}
	if after.Amplification > 0.01 {
		t.Errorf("amplification after detection = %.4f, want far below 1 (probes only)", after.Amplification)
	}
	// Recovery within the reset timeout plus a probe, counted from the
	// fault's end (the breaker opened after it began, so sooner).
	if at, ok := r.Recovered(); !ok || at > resetTimeAndProbe {
		t.Errorf("first real answer %v after the fault (found: %v), want within %v", at, ok, resetTimeAndProbe)
	}
	// And the dependency, once back, is used again.
	if rec := r.Measure(end+resetTimeAndProbe, time.Duration(s.Duration)); rec.Goodput < 0.99 {
		t.Errorf("goodput from %v after the fault = %.3f, want at least 0.99 (recovered)", resetTimeAndProbe, rec.Goodput)
	}
}

// resetTimeAndProbe is how soon after a fault ends the stack must be
// serving real answers again: the breaker's reset timeout plus a probe.
const resetTimeAndProbe = 10*time.Second + time.Second
