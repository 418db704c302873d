package outcomes

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Table writes the markdown table of one scenario's runs (one row per
// contender, then the ideal), over the whole run.
func Table(w io.Writer, runs []*Run) {
	if len(runs) == 0 {
		return
	}
	s := runs[0].Scenario
	fmt.Fprintf(w, "## %s\n\n%s. %v of calls at %g/s (deadline %v); the dependency: %d workers, capacity %.0f/s.",
		s.Name, capitalize(s.Description), time.Duration(s.Duration), s.Rate, time.Duration(s.Deadline),
		s.Dependency.Workers, s.Dependency.Capacity())
	if s.Fault.Kind != FaultNone {
		fmt.Fprintf(w, " Fault %s over [%v, %v).", s.Fault.Kind, time.Duration(s.Fault.Start), time.Duration(s.Fault.End))
	}
	fmt.Fprint(w, "\n\n")
	fmt.Fprintln(w, "| contender | calls | goodput | fallback | errors | p50 | p99 | max | amplification | fault-window amplification | peak dependency concurrency | time to detect | time to recover |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	f := s.Fault
	for _, r := range runs {
		m := r.Whole()
		win := "-"
		if f.Kind != FaultNone {
			win = fmt.Sprintf("%.3f", r.Measure(time.Duration(f.Start), time.Duration(f.End)).Amplification)
		}
		detect, recover := "-", "-"
		if f.Kind != FaultNone {
			detect, recover = "never", "never"
			if at, ok := r.Detected(); ok {
				detect = round(at - time.Duration(f.Start)).String()
			}
			if at, ok := r.Recovered(); ok {
				recover = round(at).String()
			}
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %v | %v | %v | %.3f | %s | %d | %s | %s |\n",
			r.Contender, m.Calls, pct(m.Goodput), pct(m.FallbackShare), pct(m.ErrorShare),
			round(m.P50), round(m.P99), round(m.Max), m.Amplification, win, m.Peak, detect, recover)
	}
	id := runs[0].Ideal()
	win := "-"
	switch f.Kind {
	case FaultFail, FaultHang:
		win = "probes only"
	case FaultOverload, FaultSlow, FaultFailShare:
		win = "1.000"
	}
	fmt.Fprintf(w, "| *ideal* | %d | %s | %s | - | - | - | - | %.3f | %s | - | - | - |\n\n",
		id.Calls, pct(id.Goodput), pct(id.FallbackShare), id.Amplification, win)
}

// Write writes OUTCOMES.md: a heading, then a table per scenario.
func Write(w io.Writer, seed uint64, scenarios [][]*Run) {
	fmt.Fprintf(w, `# Outcomes

What each toolkit does for a service while its dependency fails (issue 15),
written by `+"`make outcomes`"+` (seed %d, in fake time under testing/synctest:
every run with this seed gives these numbers). The model, the scenarios
(testdata/scenarios.json) and the contenders: [outcomes/doc.go](outcomes/doc.go).

Every contender but `+"`none`"+` has the same policy: fallback value, breaker
opening on 5 consecutive failures with a 10s reset, 3 attempts with backoff
(50ms, then 100ms; no jitter, for reproducibility), attempt timeout 250ms.
Every other setting is each toolkit's default: a half-open breaker closes
after 2 successful probes in ours, after 5 in failsafe-go's (its success
threshold defaults to its failure threshold).

- **goodput**: share of calls answered with a real result within the caller's deadline;
  **fallback**, **errors**: shares served the fallback value, or an error (or a late answer).
- **p50, p99, max**: latency seen by the caller, whatever the outcome.
- **amplification**: dependency calls / caller calls, over the run and over the
  calls that started in the fault window.
- **peak dependency concurrency**: most calls the dependency held at once
  (queued, in service or hanging).
- **time to detect**: from the fault's start to the start of the first call
  the contender answered without calling the dependency (a breaker's rejection).
- **time to recover**: from the fault's end to the first real answer to a call
  started after it.
- ***ideal***: the limit no library can beat: under overload the dependency
  serves at most its capacity; during an outage no call gets a real answer and
  the dependency needs to see only the breaker's probes (counted as none).

`, seed)
	for _, runs := range scenarios {
		Table(w, runs)
	}
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
