package errclass

import (
	"errors"
	"reflect"
	"strings"
)

// Any returns a predicate that reports whether any of preds reports true for
// an error, asking them in order. Nil predicates are skipped; with none left,
// the predicate reports false for every error.
func Any(preds ...func(error) bool) func(error) bool {
	fns := make([]func(error) bool, 0, len(preds))
	var names []string
	for _, p := range preds {
		if p == nil {
			continue
		}
		fns = append(fns, p)
		names = append(names, describe(p))
	}
	if len(fns) == 1 {
		return fns[0]
	}
	return named(strings.Join(names, ", "), anyOf(fns))
}

// Is returns a predicate that reports whether an error matches any of errs
// with [errors.Is]. Nil errors are skipped; with none left, the predicate
// reports false for every error.
func Is(errs ...error) func(error) bool {
	targets := make([]error, 0, len(errs))
	var names []string
	for _, e := range errs {
		if e != nil {
			targets = append(targets, e)
			names = append(names, e.Error())
		}
	}
	return named(strings.Join(names, ", "), func(err error) bool {
		if err == nil {
			return false
		}
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	})
}

// anyOf is the predicate true when one of fns is.
func anyOf(fns []func(error) bool) func(error) bool {
	if len(fns) == 1 {
		return fns[0]
	}
	return func(err error) bool {
		for _, f := range fns {
			if f(err) {
				return true
			}
		}
		return false
	}
}

// A describeProbe is passed to a predicate made by this package to learn
// what it matches; see [Describe].
type describeProbe struct{ text string }

func (*describeProbe) Error() string { return "errclass: describe" }

// named wraps f so that [Describe] can say what it matches. It is never
// inlined: the closures it returns must share one code pointer, namedPC.
//
//go:noinline
func named(text string, f func(error) bool) func(error) bool {
	return func(err error) bool {
		if p, ok := err.(*describeProbe); ok {
			p.text = text
			return false
		}
		return f(err)
	}
}

// namedPC is the code of the closures named returns: a predicate with this
// code is one of this package's, which Describe may call with a probe.
var namedPC = reflect.ValueOf(named("", nil)).Pointer()

// Describe says what a predicate made by this package matches, for
// messages such as a stack's explanation: "connection, timeout" for the
// classes of a [Set.Match], the errors' texts for [Is], the built-in
// class's name for [Timeout] and the others. It returns "" for any other
// predicate, which it never calls.
func Describe(pred func(error) bool) string {
	return describe(pred)
}

func describe(pred func(error) bool) string {
	if pred == nil {
		return ""
	}
	pc := reflect.ValueOf(pred).Pointer()
	for _, name := range builtinNames {
		if f, _ := builtin(name); reflect.ValueOf(f).Pointer() == pc {
			return name
		}
	}
	if pc != namedPC {
		return ""
	}
	p := &describeProbe{}
	pred(p)
	return p.text
}
