package outcomes_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resiliencekit/resilience/bench/outcomes"
	"github.com/resiliencekit/resilience/registry"
)

var write = flag.Bool("outcomes.write", false, "write ../OUTCOMES.md and ../img/*.svg from the runs (make outcomes)")

const seed = 15

// The guide stack's policy (testdata/guide.yaml), as the checks need it.
const (
	failureThreshold = 5
	resetTimeout     = 10 * time.Second
	successThreshold = 2 // the default: probes admitted per half-open spell
	maxAttempts      = 3
)

// results are every scenario's runs, one per contender, and its ideal.
type results struct {
	scenarios []outcomes.Scenario
	runs      [][]*outcomes.Run
	ideals    []*outcomes.Run
}

// runAll runs every scenario with every contender, each run in a bubble of
// its own.
func runAll(t *testing.T, scenarios []outcomes.Scenario) results {
	t.Helper()
	res := results{scenarios: scenarios}
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
		res.runs = append(res.runs, runs)
		res.ideals = append(res.ideals, outcomes.Ideal(s, seed))
	}
	return res
}

func (res results) tables(notes string) []byte {
	var b bytes.Buffer
	outcomes.Write(&b, seed, res.runs, res.ideals, notes)
	return b.Bytes()
}

func (res results) pictures(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i, s := range res.scenarios {
		var b bytes.Buffer
		if err := outcomes.Picture(&b, res.runs[i], res.ideals[i]); err != nil {
			t.Fatalf("%s: picture: %v", s.Name, err)
		}
		out[s.Name] = b.Bytes()
	}
	return out
}

func TestOutcomes(t *testing.T) {
	scenarios, err := outcomes.LoadScenarios("testdata/scenarios.json")
	if err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile("notes.md")
	if err != nil {
		t.Fatal(err)
	}
	first := runAll(t, scenarios)
	if t.Failed() {
		return
	}
	got := first.tables(string(notes))
	if again := runAll(t, scenarios).tables(string(notes)); !bytes.Equal(again, got) {
		t.Errorf("two runs with seed %d gave different tables:\n%s\nthen:\n%s", seed, got, again)
	}
	// Every figure the notes quote is in the tables.
	tablesOnly := first.tables("")
	for _, fig := range regexp.MustCompile("`([0-9][0-9.]*(%|ms|s)?)`").FindAllStringSubmatch(string(notes), -1) {
		if !bytes.Contains(tablesOnly, []byte(" "+fig[1]+" |")) {
			t.Errorf("notes.md quotes %s, which is in no table", fig[1])
		}
	}
	if *write {
		if err := os.WriteFile("../OUTCOMES.md", got, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("../img", 0o755); err != nil {
			t.Fatal(err)
		}
		for name, svg := range first.pictures(t) {
			if err := os.WriteFile(filepath.Join("../img", name+".svg"), svg, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Log("wrote bench/OUTCOMES.md and bench/img/*.svg")
	}

	for i, s := range scenarios {
		for _, r := range first.runs[i] {
			t.Run(s.Name+"/"+r.Contender, func(t *testing.T) {
				checkAll(t, r)
				if r.Contender == "resilience" {
					checkOurs(t, r)
				}
			})
		}
	}
}

// checkAll asserts what the harness must give every contender: the calls
// it made, each with its attempts, and every real answer by the deadline.
func checkAll(t *testing.T, r *outcomes.Run) {
	calls := 0
	for _, c := range r.Calls {
		calls += c.Attempts
		if c.Outcome == outcomes.Real && c.Latency > time.Duration(r.Scenario.Deadline) {
			t.Errorf("call at %v: a real answer after %v counted as real", c.Start, c.Latency)
		}
	}
	if calls != len(r.Dep) {
		t.Errorf("the calls' attempts add up to %d, the dependency saw %d calls", calls, len(r.Dep))
	}
}

// checkOurs asserts what must always hold for this toolkit's stack (issue
// 15's short form): every call back by its deadline; during an outage of
// every instance, detection within FailureThreshold failed calls, only
// probes reaching the dependency once the breaker is open, and a probe
// ResetTimeout after each opening, so recovery within ResetTimeout plus one
// probe.
func checkOurs(t *testing.T, r *outcomes.Run) {
	s := r.Scenario
	deadline := time.Duration(s.Deadline)
	for _, c := range r.Calls {
		if c.Latency > deadline {
			t.Errorf("call at %v took %v, want at most the deadline %v", c.Start, c.Latency, deadline)
			break
		}
	}
	f := s.Fault
	if (f.Kind != outcomes.FaultFail && f.Kind != outcomes.FaultHang) || len(f.Instances) > 0 {
		return
	}
	start, end := time.Duration(f.Start), time.Duration(f.End)
	changes := slices.Clone(r.Changes)
	slices.SortStableFunc(changes, func(a, b outcomes.StateChange) int { return int(a.At - b.At) })
	opened := -1
	for i, c := range changes {
		if c.To == registry.StateOpen && c.At >= start {
			opened = i
			break
		}
	}
	if opened < 0 {
		t.Fatalf("the breaker never opened during the %v outage; changes: %v", f.Window(), changes)
	}
	openAt := changes[opened].At

	// Detection within FailureThreshold calls: the breaker opened when at
	// most FailureThreshold calls had come back failed.
	failedBefore := 0
	for _, c := range r.Calls {
		if c.Attempts > 0 && c.Outcome != outcomes.Real && c.Start+c.Latency <= openAt {
			failedBefore++
		}
	}
	if failedBefore > failureThreshold || failedBefore == 0 {
		t.Errorf("the breaker opened at %v after %d failed calls, want 1 to %d", openAt-start, failedBefore, failureThreshold)
	}
	if at, ok := r.Detected(); !ok || at < openAt {
		t.Errorf("first rejection at %v (found: %v), want one after the breaker opened at %v", at-start, ok, openAt-start)
	}

	// Only probes: a call that reached the dependency after the breaker
	// opened, while the outage lasted, was let in as a probe, at most
	// SuccessThreshold per half-open spell.
	state := func(at time.Duration) (registry.State, int) {
		st, spell := registry.StateClosed, -1
		for i, c := range changes {
			if c.At > at {
				break
			}
			st = c.To
			if c.To == registry.StateHalfOpen {
				spell = i
			}
		}
		return st, spell
	}
	probes := map[int]int{}
	for _, c := range r.Calls {
		if c.Start < openAt || c.Start >= end || c.Attempts == 0 {
			continue
		}
		st, spell := state(c.Start)
		if st != registry.StateHalfOpen {
			t.Errorf("call at %v reached the dependency with the breaker %v", c.Start-start, st)
			continue
		}
		if c.Attempts > maxAttempts {
			t.Errorf("probe at %v made %d attempts, want at most %d", c.Start-start, c.Attempts, maxAttempts)
		}
		if probes[spell]++; probes[spell] > successThreshold {
			t.Errorf("half-open spell at %v let in %d calls, want at most %d", changes[spell].At-start, probes[spell], successThreshold)
		}
	}
	if after := r.Measure(openAt, end); after.Amplification > 0.01 {
		t.Errorf("amplification after detection = %.4f, want far below 1 (probes only)", after.Amplification)
	}

	// A probe ResetTimeout after every opening.
	for i, c := range changes {
		if c.To != registry.StateOpen {
			continue
		}
		if i+1 == len(changes) || changes[i+1].To != registry.StateHalfOpen || changes[i+1].At-c.At > resetTimeout+time.Millisecond {
			t.Errorf("opened at %v, then %v: want half-open %v later", c.At-start, fmt.Sprint(changes[i+1:]), resetTimeout)
		}
	}
	// Recovery within the reset timeout plus a probe, from the fault's
	// end (the breaker opened after it began, so sooner).
	if at, ok := r.Recovered(); !ok || at > resetTimeout+deadline {
		t.Errorf("first real answer %v after the fault (found: %v), want within %v", at, ok, resetTimeout+deadline)
	}
	if rec := r.Measure(end+resetTimeout+deadline, time.Duration(s.Duration)); rec.Goodput < 0.99 {
		t.Errorf("goodput from %v after the fault = %.3f, want at least 0.99 (recovered)", resetTimeout+deadline, rec.Goodput)
	}
}
