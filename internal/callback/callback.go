// Package callback is the one panic boundary around user code: listeners,
// observers, predicates, Failed() methods, status hooks. Every package of the
// module that calls a user's function goes through it, so the rule holds in
// one place:
//
//   - on the caller's goroutine, the library releases what it holds and then
//     lets the panic go on ([Call] returns the panic, the caller cleans up and
//     calls [Panic.Repanic]);
//   - on a goroutine of the library's own (a timer, a worker, a background
//     loop), the panic is recovered and logged at Error with its stack, and
//     the library goes on ([Guard], [Log]).
package callback

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Panic is a recovered panic of a user callback.
type Panic struct {
	// What names the callback ("registry listener", "observer", ...).
	What string
	// Value is the value the callback panicked with.
	Value any
	// Stack is the goroutine's stack where the panic was recovered.
	Stack []byte
}

// Error describes the panic.
func (p *Panic) Error() string { return fmt.Sprintf("%s panicked: %v", p.What, p.Value) }

// Repanic panics again with the original value, on the current goroutine:
// call it on the caller's goroutine once the library has released what it
// holds.
func (p *Panic) Repanic() { panic(p.Value) }

// Call runs fn and returns nil, or the panic fn raised. It never panics
// itself (a runtime.Goexit in fn, as t.FailNow does, still unwinds).
func Call(what string, fn func()) (p *Panic) {
	defer func() {
		if v := recover(); v != nil {
			p = &Panic{What: what, Value: v, Stack: debug.Stack()}
		}
	}()
	fn()
	return nil
}

// Log logs p at Error on l (nil: [slog.Default]) with its stack: what a
// goroutine of the library's own does with a user's panic.
func Log(l *slog.Logger, p *Panic) {
	if p == nil {
		return
	}
	if l == nil {
		l = slog.Default()
	}
	l.LogAttrs(context.Background(), slog.LevelError, "resilience: "+p.What+" panicked",
		slog.String("panic", fmt.Sprint(p.Value)), slog.String("stack", string(p.Stack)))
}

// Guard, deferred first thing in a goroutine of the library's own, recovers a
// panic and logs it with [Log]: defer callback.Guard(logger, "timer").
func Guard(l *slog.Logger, what string) {
	if v := recover(); v != nil {
		Log(l, &Panic{What: what, Value: v, Stack: debug.Stack()})
	}
}

// First keeps the first of several panics: run every subscriber, remember
// the first panic, and re-raise or log it once all have run, so that one
// panicking subscriber hides nothing from the others.
type First struct{ P *Panic }

// Call runs fn through [Call] and keeps its panic if it is the first.
func (f *First) Call(what string, fn func()) {
	if p := Call(what, fn); p != nil && f.P == nil {
		f.P = p
	}
}
