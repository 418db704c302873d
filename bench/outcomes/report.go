package outcomes

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Table writes the markdown tables of one scenario's runs, one row per
// contender and one for the ideal: over the whole run, then over the calls
// that started in the fault window.
func Table(w io.Writer, runs []*Run, ideal *Run) {
	if len(runs) == 0 {
		return
	}
	s := runs[0].Scenario
	f := s.Fault
	fmt.Fprintf(w, "## %s\n\n%s. %v of calls at %g/s (deadline %v); the dependency: %s, capacity %.0f/s.",
		s.Name, capitalize(s.Description), time.Duration(s.Duration), s.Rate, time.Duration(s.Deadline),
		shape(s.Dependency), s.Dependency.Capacity())
	if f.Kind != FaultNone {
		fmt.Fprintf(w, " Fault %s over [%v, %v)", f.Kind, time.Duration(f.Start), time.Duration(f.End))
		if len(f.Instances) > 0 {
			fmt.Fprintf(w, " on instances %v", f.Instances)
		}
		fmt.Fprint(w, ".")
	}
	fmt.Fprintf(w, "\n\n![%s: goodput and p99 over time](img/%s.svg)\n\n", s.Name, s.Name)

	all := append(append([]*Run(nil), runs...), ideal)
	fmt.Fprintln(w, "Over the whole run:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| contender | calls | goodput | fallback | errors | p50 | p99 | p99.9 | max | p99 answered | amplification | peak concurrency | time to detect | time to recover |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range all {
		detect, recover := "-", "-"
		if f.Kind != FaultNone {
			detect, recover = "never", "never"
			if at, ok := r.Detected(); ok {
				detect = round(at - time.Duration(f.Start)).String()
			} else if r.ideal {
				detect = "-"
			}
			if at, ok := r.Recovered(); ok {
				recover = round(at).String()
			}
		}
		fmt.Fprintf(w, "%s | %s | %s |\n", row(r, r.Whole()), detect, recover)
	}
	fmt.Fprintln(w)
	if f.Kind == FaultNone {
		return
	}
	fmt.Fprintf(w, "Over the calls that started in the fault window [%v, %v):\n\n", time.Duration(f.Start), time.Duration(f.End))
	fmt.Fprintln(w, "| contender | calls | goodput | fallback | errors | p50 | p99 | p99.9 | max | p99 answered | amplification | peak concurrency |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range all {
		fmt.Fprintf(w, "%s |\n", row(r, r.Window()))
	}
	fmt.Fprintln(w)
}

// row is a table row's measures, without its closing bar.
func row(r *Run, m Measures) string {
	name := r.Contender
	if r.ideal {
		name = "*ideal*"
	}
	answered := "-"
	if m.RealP99 > 0 {
		answered = round(m.RealP99).String()
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %v | %v | %v | %v | %s | %.3f | %d",
		name, m.Calls, pct(m.Goodput), pct(m.FallbackShare), pct(m.ErrorShare),
		round(m.P50), round(m.P99), round(m.P999), round(m.Max), answered, m.Amplification, m.Peak)
}

func shape(c DependencyConfig) string {
	if c.Instances > 1 {
		return fmt.Sprintf("%d instances of %d workers", c.Instances, c.Workers)
	}
	return fmt.Sprintf("%d workers", c.Workers)
}

// Write writes OUTCOMES.md: a heading, then the tables of each scenario,
// then notes (markdown written by hand, about what the tables show).
func Write(w io.Writer, seed uint64, scenarios [][]*Run, ideals []*Run, notes string) {
	fmt.Fprintf(w, `# Outcomes

What each toolkit does for a service while its dependency fails (issue 15),
written by `+"`make outcomes`"+` (seed %d, in fake time under testing/synctest:
every run with this seed gives these numbers). The model, the scenarios
(outcomes/testdata/scenarios.json) and the contenders: [outcomes/doc.go](outcomes/doc.go).
What the tables show: [the notes at the end](#what-the-tables-show).

Every contender but `+"`none`"+` has the same policy: fallback value, breaker
opening on 5 consecutive failures with a 10s reset, 3 attempts with backoff
(50ms, then 100ms; no jitter, for reproducibility), attempt timeout 250ms.
Every other setting is each toolkit's default: a half-open breaker closes
after 2 successful probes in ours, after 5 in failsafe-go's (its success
threshold defaults to its failure threshold), after 1 in gobreaker's.
go-kit's client is built its own way (see the contenders below).

Contenders:
`, seed)
	for _, c := range Contenders() {
		fmt.Fprintf(w, "- **%s**: %s.\n", c.Name, c.Policy)
	}
	fmt.Fprint(w, `- **hystrix-go** (go-kit's circuitbreaker.Hystrix) cannot run here: each
  hystrix command starts metric goroutines that block forever and cannot be
  stopped, so a synctest bubble never ends ("deadlock: main bubble goroutine
  has exited but blocked goroutines remain"); started outside the bubble,
  they stamp hystrix's rolling windows with the real clock while the calls
  run on the fake one. See Contenders in outcomes/contenders.go.

Measures, per contender, over the whole run and over the calls that started
in the fault window:

- **goodput**: share of calls answered with a real result within the caller's deadline;
  **fallback**, **errors**: shares served the fallback value, or an error (or a late answer).
- **p50, p99, p99.9, max**: latency seen by the caller, whatever the outcome;
  **p99 answered**: of the calls answered with a real result.
- **amplification**: dependency calls / caller calls (the dependency calls
  made for those caller calls, their retries included).
- **peak concurrency**: most calls the dependency held at once
  (queued, in service or hanging).
- **time to detect**: from the fault's start to the start of the first call
  the contender answered without calling the dependency (a breaker's rejection).
- **time to recover**: from the fault's end to the first real answer to a call
  started after it.
- ***ideal***: the limit no library can beat, call by call from the same
  arrivals and service times (outcomes/ideal.go): every call the dependency can
  serve is answered in its service time from one dependency call; during an
  outage the rest get the fallback at once and the dependency sees none of
  them (the breaker's few probes left out); under overload or a brownout the
  dependency serves its capacity's worth of calls; its peak is the
  dependency's workers (any more are queued).
- Pictures: goodput and p99 per second of call starts, one line per contender,
  the fault window shaded (gonum.org/v1/plot).

`)
	for i, runs := range scenarios {
		Table(w, runs, ideals[i])
	}
	if notes != "" {
		fmt.Fprint(w, strings.TrimSpace(notes), "\n")
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
