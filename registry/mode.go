package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Mode is how a breaker decides: by its state machine, as it normally does,
// or by hand (resilience4j's FORCED_OPEN, DISABLED and METRICS_ONLY). An
// operator sets it with [Breaker.SetMode] for an incident, a deploy or a
// test, and sets ModeNormal to give the decision back.
type Mode uint8

// The modes of a breaker.
const (
	// ModeNormal: the state machine decides (the default).
	ModeNormal Mode = iota
	// ModeHeldOpen: every call is rejected with a [*CircuitOpenError]
	// (State open, no HalfOpenAt: it does not half-open by itself) until
	// the mode is set back. No outcome is recorded.
	ModeHeldOpen
	// ModeDisabled: every call goes through, and nothing is recorded: the
	// breaker is as if absent. Its state stays what it was.
	ModeDisabled
	// ModeMetricsOnly: the breaker counts outcomes, changes state and
	// reports its changes as usual, but never rejects a call: a call it
	// would have rejected goes through, unrecorded. For trying a breaker's
	// settings on live traffic before letting it act.
	ModeMetricsOnly
)

// String returns the mode's name: "normal", "held-open", "disabled",
// "metrics-only".
func (m Mode) String() string {
	switch m {
	case ModeNormal:
		return "normal"
	case ModeHeldOpen:
		return "held-open"
	case ModeDisabled:
		return "disabled"
	case ModeMetricsOnly:
		return "metrics-only"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// MarshalText returns the mode's name, so modes print by name in JSON.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// ErrModeShared is returned by [Breaker.SetMode] for a breaker whose state
// is shared through a [Store]: a mode set on one replica would not hold on
// the others, so it is refused rather than half applied.
var ErrModeShared = errors.New("registry: a manual mode cannot be set on a store-shared breaker")

// ErrInvalidMode is returned by [Breaker.SetMode] for a value that is none
// of the modes.
var ErrInvalidMode = errors.New("registry: invalid breaker mode")

// SetMode sets how the breaker decides (see [Mode]). Setting a mode other
// than ModeNormal takes the breaker off its fast path; ModeNormal puts it
// back, in the state the machine is in (a breaker held open for longer than
// its ResetTimeout is half-open, not open, when released). The change is
// logged at Warn on the registry's logger ([Config].Logger, or
// slog.Default). It is an error on a store-shared
// breaker ([ErrModeShared]) or for an unknown mode ([ErrInvalidMode]).
func (b *Breaker) SetMode(m Mode) error {
	if m > ModeMetricsOnly {
		return fmt.Errorf("%w: %d", ErrInvalidMode, uint8(m))
	}
	if b.sh != nil {
		return fmt.Errorf("%w: %s", ErrModeShared, b.name)
	}
	b.mu.Lock()
	prev := Mode(b.mode.Load())
	b.closeGate()
	b.mode.Store(uint32(m))
	b.updateGate()
	b.mu.Unlock()
	if prev != m {
		l := b.log
		if l == nil {
			l = slog.Default()
		}
		l.Warn("circuit breaker mode changed", "breaker", b.name, "from", prev.String(), "to", m.String())
	}
	return nil
}

// Mode returns how the breaker decides now.
func (b *Breaker) Mode() Mode { return Mode(b.mode.Load()) }

// allowMode is Allow for a breaker in a manual mode. A zero Ticket is one
// Done ignores.
func (b *Breaker) allowMode(ctx context.Context, m Mode) (Ticket, error) {
	switch m {
	case ModeHeldOpen:
		return Ticket{}, &CircuitOpenError{Service: b.name, State: StateOpen, OpenedAt: b.heldSince()}
	case ModeDisabled:
		return Ticket{}, nil
	}
	// Metrics only: the machine decides and counts; what it would reject
	// goes through unrecorded.
	if e := b.rejection(); e != nil {
		return Ticket{}, nil
	}
	t, err := b.allowSlow(ctx)
	if err != nil {
		return Ticket{}, nil
	}
	return t, nil
}

// heldSince is the OpenedAt of a held-open rejection: when the breaker
// last opened, if it is open, else zero.
func (b *Breaker) heldSince() (t time.Time) {
	if e := b.openErr.Load(); e != nil {
		return e.OpenedAt
	}
	return t
}
