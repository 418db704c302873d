package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// This file holds what the status page shows besides the registry's
// snapshots: the true call counts, from the stack's Measure layer, and the
// event log, whose repeats are grouped so that the transitions stay in view.

// callOutcomes are the outcomes a Measure layer reports, in the order the
// counts keep them.
var callOutcomes = [...]middleware.Outcome{middleware.OutcomeSuccess, middleware.OutcomeFailure, middleware.OutcomeRejected, middleware.OutcomeCanceled}

// callCounts counts the calls through the stack, from its Measure layer's
// events: every call, those the breaker's fast path admits or rejects
// without recording anything included. It keeps the totals, and the totals
// at the breaker's last state change, so that the page can say what passed
// since. The counts cost a call one atomic add; a state change takes a lock.
type callCounts struct {
	total [len(callOutcomes)]atomic.Int64

	mu       sync.Mutex
	mark     [len(callOutcomes)]int64 // the totals at the last state change
	markedAt time.Time                // when it happened; zero before any
}

// outcomeCounts is one set of counts, by outcome.
type outcomeCounts struct {
	Calls    int64 `json:"calls"`
	Success  int64 `json:"success"`
	Failure  int64 `json:"failure"`
	Rejected int64 `json:"rejected"`
	Canceled int64 `json:"canceled"`
}

// callsJSON is what the page shows of the counts.
type callsJSON struct {
	Total       outcomeCounts `json:"total"`
	SinceChange outcomeCounts `json:"since_change"`
	ChangedAt   time.Time     `json:"changed_at,omitzero"`
}

// observe counts e if it is a measured call, and marks the counts if it is
// a state change.
func (c *callCounts) observe(e middleware.Event) {
	switch e.Kind {
	case middleware.EventCall:
		if i := slices.Index(callOutcomes[:], e.Outcome); i >= 0 {
			c.total[i].Add(1)
		}
	case middleware.EventStateChange:
		c.mu.Lock()
		for i := range c.total {
			c.mark[i] = c.total[i].Load()
		}
		c.markedAt = time.Now()
		c.mu.Unlock()
	}
}

func (c *callCounts) snapshot() callsJSON {
	c.mu.Lock()
	mark, at := c.mark, c.markedAt
	c.mu.Unlock()
	var total, since [len(callOutcomes)]int64
	for i := range c.total {
		total[i] = c.total[i].Load()
		since[i] = max(total[i]-mark[i], 0)
	}
	counts := func(n [len(callOutcomes)]int64) outcomeCounts {
		return outcomeCounts{Calls: n[0] + n[1] + n[2] + n[3], Success: n[0], Failure: n[1], Rejected: n[2], Canceled: n[3]}
	}
	return callsJSON{Total: counts(total), SinceChange: counts(since), ChangedAt: at}
}

// eventLog keeps the recent events of the stack and the upstream for the
// page, repeats grouped: an event like one already logged since the last
// transition (the same layer, kind and detail, a retry's delay aside) adds
// to that entry's count ("fallback ×120") in place of a line of its own. A
// transition (a breaker's state change, a change of the faults) always has
// a line of its own and starts new groups, and transitions are dropped
// last: the page shows the open, half-open and close of the breaker however
// many calls it rejected in between. It is a middleware.Observer, safe for
// concurrent use.
type eventLog struct {
	mu      sync.Mutex
	seq     uint64
	entries []eventJSON    // oldest first
	groups  map[string]int // group key -> index in entries, since the last transition
	max     int            // entries kept that are not transitions
	maxT    int            // transitions kept
}

// eventJSON is one line of the page's event list: one event, or a group of
// like events.
type eventJSON struct {
	Seq        uint64    `json:"seq"`   // the number of its latest event
	At         time.Time `json:"at"`    // when its latest event happened
	First      time.Time `json:"first"` // when its first event happened
	Count      int       `json:"count"` // events in the group, 1 for one
	Layer      string    `json:"layer"`
	Kind       string    `json:"kind"`
	Detail     string    `json:"detail"` // its latest event's
	Transition bool      `json:"transition,omitempty"`

	key string // its group: layer, kind and detail, a retry's delay aside
}

// newEventLog returns an event log keeping up to max grouped entries and
// max transitions.
func newEventLog(max int) *eventLog {
	return &eventLog{max: max, maxT: max, groups: make(map[string]int)}
}

// transitionKinds are the kinds of event that are transitions.
var transitionKinds = map[string]bool{
	middleware.EventStateChange.String(): true,
	"chaos_set":                          true,
}

// Observe implements middleware.Observer.
func (l *eventLog) Observe(_ context.Context, e middleware.Event) {
	layer, detail := e.Layer, short(e.Err)
	group := ""
	switch e.Kind {
	case middleware.EventCall:
		return // every call: counted by callCounts, not listed
	case middleware.EventStateChange:
		detail = fmt.Sprintf("%s: %s → %s", e.Name, e.From, e.To)
	case middleware.EventRetry:
		if re, ok := e.Err.(*middleware.RetryError); ok {
			detail = fmt.Sprintf("gave up after %d attempts (%s)", e.Attempt, short(re.Err))
			break
		}
		group = fmt.Sprintf("attempt %d failed (%s)", e.Attempt, short(e.Err))
		detail = fmt.Sprintf("%s, next in %s", group, e.Wait.Round(time.Millisecond))
	case middleware.EventFallback:
		detail = "served [] in place of: " + short(e.Err)
	case middleware.EventTimeout:
		detail = fmt.Sprintf("attempt cut at %s", e.Latency)
	case middleware.EventChaos:
		layer = "upstream/chaos"
		if e.Wait > 0 {
			detail = fmt.Sprintf("injects %s of latency", e.Wait)
		} else {
			detail = "injects a fault: resets the connection"
		}
	}
	if group == "" {
		group = detail
	}
	l.add(layer, e.Kind.String(), detail, group)
}

// note logs an event of the demo's own.
func (l *eventLog) note(layer, kind, detail string) { l.add(layer, kind, detail, detail) }

func (l *eventLog) add(layer, kind, detail, group string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	if transitionKinds[kind] {
		clear(l.groups)
		l.entries = append(l.entries, eventJSON{Seq: l.seq, At: now, First: now, Count: 1, Layer: layer, Kind: kind, Detail: detail, Transition: true})
		l.trim()
		return
	}
	key := layer + "\x00" + kind + "\x00" + group
	if i, ok := l.groups[key]; ok {
		e := &l.entries[i]
		e.Seq, e.At, e.Detail = l.seq, now, detail
		e.Count++
		return
	}
	l.groups[key] = len(l.entries)
	l.entries = append(l.entries, eventJSON{Seq: l.seq, At: now, First: now, Count: 1, Layer: layer, Kind: kind, Detail: detail})
	l.trim()
}

// trim drops the oldest entries past the bounds, other entries before
// transitions, and re-indexes the groups.
func (l *eventLog) trim() {
	var groups, transitions int
	for _, e := range l.entries {
		if e.Transition {
			transitions++
		} else {
			groups++
		}
	}
	if groups <= l.max && transitions <= l.maxT {
		return
	}
	dropG, dropT := max(groups-l.max, 0), max(transitions-l.maxT, 0)
	l.entries = slices.DeleteFunc(l.entries, func(e eventJSON) bool {
		if e.Transition && dropT > 0 {
			dropT--
			return true
		}
		if !e.Transition && dropG > 0 {
			dropG--
			return true
		}
		return false
	})
	// The open groups (those since the last transition) moved down.
	clear(l.groups)
	for i := len(l.entries) - 1; i >= 0 && !l.entries[i].Transition; i-- {
		l.groups[l.entries[i].key] = i
	}
}

// recent returns the entries, newest activity first: at most n of those
// that are not transitions, and every transition kept.
func (l *eventLog) recent(n int) []eventJSON {
	l.mu.Lock()
	out := slices.Clone(l.entries)
	l.mu.Unlock()
	slices.SortStableFunc(out, func(a, b eventJSON) int {
		switch {
		case a.Seq > b.Seq:
			return -1
		case a.Seq < b.Seq:
			return 1
		}
		return 0
	})
	kept := 0
	return slices.DeleteFunc(out, func(e eventJSON) bool {
		if e.Transition {
			return false
		}
		kept++
		return kept > n
	})
}
