package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/registry"
)

func call(outcome middleware.Outcome) middleware.Event {
	return middleware.Event{Kind: middleware.EventCall, Layer: "measure", Name: "embedding_api", Outcome: outcome}
}

func stateChange(from, to registry.State) middleware.Event {
	return middleware.Event{Kind: middleware.EventStateChange, Layer: "circuit_breaker", Name: "embedding_api", From: from, To: to}
}

func repeat(n int, e middleware.Event) []middleware.Event {
	out := make([]middleware.Event, n)
	for i := range out {
		out[i] = e
	}
	return out
}

// The page's counts are the Measure layer's: every call, by outcome, in all
// and since the breaker's last state change, whatever the breaker recorded.
func TestCallCounts(t *testing.T) {
	tests := []struct {
		name      string
		events    [][]middleware.Event
		wantTotal outcomeCounts
		wantSince outcomeCounts
	}{
		{name: "none", wantTotal: outcomeCounts{}, wantSince: outcomeCounts{}},
		{name: "successes on the fast path",
			events:    [][]middleware.Event{repeat(300, call(middleware.OutcomeSuccess))},
			wantTotal: outcomeCounts{Calls: 300, Success: 300}, wantSince: outcomeCounts{Calls: 300, Success: 300}},
		{name: "rejections while open",
			events: [][]middleware.Event{
				repeat(3, call(middleware.OutcomeSuccess)), repeat(5, call(middleware.OutcomeFailure)),
				{stateChange(registry.StateClosed, registry.StateOpen)}, repeat(120, call(middleware.OutcomeRejected)),
			},
			wantTotal: outcomeCounts{Calls: 128, Success: 3, Failure: 5, Rejected: 120},
			wantSince: outcomeCounts{Calls: 120, Rejected: 120}},
		{name: "every outcome, two changes",
			events: [][]middleware.Event{
				repeat(2, call(middleware.OutcomeFailure)), {stateChange(registry.StateClosed, registry.StateOpen)},
				repeat(4, call(middleware.OutcomeRejected)), {stateChange(registry.StateOpen, registry.StateHalfOpen)},
				repeat(2, call(middleware.OutcomeSuccess)), {call(middleware.OutcomeCanceled)},
				{{Kind: middleware.EventRetry}, {Kind: middleware.EventFallback}}, // not calls
			},
			wantTotal: outcomeCounts{Calls: 9, Success: 2, Failure: 2, Rejected: 4, Canceled: 1},
			wantSince: outcomeCounts{Calls: 3, Success: 2, Canceled: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c callCounts
			for _, es := range tt.events {
				for _, e := range es {
					c.observe(e)
				}
			}
			got := c.snapshot()
			if got.Total != tt.wantTotal {
				t.Errorf("total = %+v, want %+v", got.Total, tt.wantTotal)
			}
			if got.SinceChange != tt.wantSince {
				t.Errorf("since change = %+v, want %+v", got.SinceChange, tt.wantSince)
			}
		})
	}
}

// line is what a test compares of a logged entry.
type line struct {
	kind, detail string
	count        int
}

func lines(es []eventJSON) []line {
	out := make([]line, len(es))
	for i, e := range es {
		out[i] = line{e.Kind, e.Detail, e.Count}
	}
	return out
}

// The event log groups repeats since the last transition into one line with
// a count, gives every transition a line of its own, lists no measured
// call, and drops transitions last: newest activity first.
func TestEventLogGroups(t *testing.T) {
	open := &registry.CircuitOpenError{Service: "embedding_api", State: registry.StateOpen}
	reset := errors.New("connection reset by peer")
	fallbackOpen := middleware.Event{Kind: middleware.EventFallback, Layer: "fallback", Err: open}
	retry := func(attempt int, delay time.Duration) middleware.Event {
		return middleware.Event{Kind: middleware.EventRetry, Layer: "retry", Attempt: attempt, Wait: delay, Err: reset}
	}
	tests := []struct {
		name   string
		max    int
		events []middleware.Event
		n      int // recent(n)
		want   []line
	}{
		{name: "one line per rejected call no more",
			max:    100,
			events: append([]middleware.Event{stateChange(registry.StateClosed, registry.StateOpen)}, repeat(120, fallbackOpen)...),
			n:      100,
			want: []line{
				{"fallback", "served [] in place of: circuit embedding_api is open", 120},
				{"state_change", "embedding_api: closed → open", 1},
			}},
		{name: "a transition starts new groups",
			max: 100,
			events: append(append(repeat(3, fallbackOpen), stateChange(registry.StateOpen, registry.StateHalfOpen)),
				repeat(2, fallbackOpen)...),
			n: 100,
			want: []line{
				{"fallback", "served [] in place of: circuit embedding_api is open", 2},
				{"state_change", "embedding_api: open → half-open", 1},
				{"fallback", "served [] in place of: circuit embedding_api is open", 3},
			}},
		{name: "retries group whatever their delay, by attempt",
			max:    100,
			events: []middleware.Event{retry(1, 9*time.Millisecond), retry(2, 21*time.Millisecond), retry(1, 11*time.Millisecond)},
			n:      100,
			want: []line{
				{"retry", "attempt 1 failed (connection reset by peer), next in 11ms", 2},
				{"retry", "attempt 2 failed (connection reset by peer), next in 21ms", 1},
			}},
		{name: "measured calls are not listed",
			max:    100,
			events: append(repeat(50, call(middleware.OutcomeSuccess)), stateChange(registry.StateClosed, registry.StateOpen), call(middleware.OutcomeRejected)),
			n:      100,
			want:   []line{{"state_change", "embedding_api: closed → open", 1}},
		},
		{name: "transitions stay in view through a flood",
			max: 3,
			events: func() []middleware.Event {
				es := []middleware.Event{stateChange(registry.StateClosed, registry.StateOpen), stateChange(registry.StateOpen, registry.StateHalfOpen), stateChange(registry.StateHalfOpen, registry.StateClosed)}
				for i := range 1000 { // 1000 distinct lines
					es = append(es, retry(i+1, time.Millisecond))
				}
				return es
			}(),
			n: 2,
			want: []line{
				{"retry", "attempt 1000 failed (connection reset by peer), next in 1ms", 1},
				{"retry", "attempt 999 failed (connection reset by peer), next in 1ms", 1},
				{"state_change", "embedding_api: half-open → closed", 1},
				{"state_change", "embedding_api: open → half-open", 1},
				{"state_change", "embedding_api: closed → open", 1},
			}},
		{name: "transitions are bounded too",
			max: 2,
			events: func() []middleware.Event {
				var es []middleware.Event
				for range 10 {
					es = append(es, stateChange(registry.StateClosed, registry.StateOpen), fallbackOpen, stateChange(registry.StateOpen, registry.StateClosed))
				}
				return es
			}(),
			n: 100,
			want: []line{
				{"state_change", "embedding_api: open → closed", 1},
				{"fallback", "served [] in place of: circuit embedding_api is open", 1},
				{"state_change", "embedding_api: closed → open", 1},
				{"fallback", "served [] in place of: circuit embedding_api is open", 1},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newEventLog(tt.max)
			for _, e := range tt.events {
				l.Observe(context.Background(), e)
			}
			got := lines(l.recent(tt.n))
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("lines =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

// Through the running service: during a 100% error outage the page's counts
// are every call, the events are grouped with the transitions in view, and
// the upstream's health check fails; once the faults stop it passes again.
func TestServeStatusDuringOutage(t *testing.T) {
	s, srv := newTestService(t)
	defer http.DefaultClient.CloseIdleConnections()
	if got := post(t, srv.URL+"/api/chaos", `{"error_rate": 1}`); got != 200 {
		t.Fatalf("POST /api/chaos = %d", got)
	}
	const calls = 40
	for range calls {
		if _, err := s.protected(t.Context(), embedRequest{Texts: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
	}
	var st struct {
		Calls  callsJSON `json:"calls"`
		Events []eventJSON
		Health struct {
			Checks map[string][]struct {
				Status string `json:"status"`
			} `json:"checks"`
		} `json:"health"`
	}
	_, body := get(t, srv.URL+"/api/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Calls.Total.Calls; got != calls {
		t.Errorf("calls = %d, want %d", got, calls)
	}
	// Since the breaker opened, every call was rejected but the one whose
	// failure opened it, which ends (and is measured) after the change.
	if since := st.Calls.SinceChange; since.Rejected == 0 || since.Success != 0 || since.Failure > 1 || since.Rejected+since.Failure != since.Calls {
		t.Errorf("since the breaker opened: %+v, want every call rejected but the one that opened it", since)
	}
	var fallbacks, changes int
	for _, e := range st.Events {
		switch e.Kind {
		case "fallback":
			fallbacks += e.Count
		case "state_change":
			changes++
		}
	}
	if len(st.Events) > 12 || fallbacks != calls || changes != 1 {
		t.Errorf("events: %d lines, %d fallbacks, %d state changes; want at most 12 lines, %d fallbacks, 1 state change:\n%s",
			len(st.Events), fallbacks, changes, calls, strings.ReplaceAll(body, "},{", "},\n{"))
	}
	if c := st.Health.Checks["embedding_api"]; len(c) != 1 || c[0].Status != "fail" {
		t.Errorf("embedding_api health = %+v, want fail during the outage", c)
	}
	if got := post(t, srv.URL+"/api/chaos", `{"error_rate": 0}`); got != 200 {
		t.Fatalf("POST /api/chaos = %d", got)
	}
	_, body = get(t, srv.URL+"/api/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if c := st.Health.Checks["embedding_api"]; len(c) != 1 || c[0].Status != "pass" {
		t.Errorf("embedding_api health = %+v, want pass once the faults stop", c)
	}
}
