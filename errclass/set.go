package errclass

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// ErrUnknownClass is matched by the error [Set.Match] returns for a name that
// is not a class of the set.
var ErrUnknownClass = errors.New("errclass: unknown error class")

// ErrInvalidClass is matched by the error [Set.Register] returns for a class
// it cannot add: a bad or taken name, or a nil predicate.
var ErrInvalidClass = errors.New("errclass: invalid error class")

// builtinNames are the names of the built-in classes, sorted.
var builtinNames = [...]string{"connection", "http-429", "http-5xx", "timeout"}

// builtin returns the built-in class called name. It is a switch, not a map,
// so the built-ins cannot be changed.
func builtin(name string) (func(error) bool, bool) {
	switch name {
	case "timeout":
		return Timeout, true
	case "connection":
		return Connection, true
	case "http-5xx":
		return HTTP5xx, true
	case "http-429":
		return HTTP429, true
	}
	return nil, false
}

// Set is a set of named error classes, the names a policy file uses
// (retry_on: [connection, timeout]). It always holds the built-in classes,
// which cannot be replaced:
//
//   - "timeout": [Timeout]
//   - "connection": [Connection]
//   - "http-5xx": [HTTP5xx]
//   - "http-429": [HTTP429]
//
// and the classes added with [Set.Register]. The zero value holds the
// built-ins and is ready to use; a nil *Set holds the built-ins and can be
// read but not registered into. A Set must not be copied after first use.
// Its methods are safe for concurrent use.
type Set struct {
	mu      sync.RWMutex
	classes map[string]func(error) bool // added with Register; never the built-ins
}

// Register adds the class name, matched by match. It returns an error
// matching [ErrInvalidClass], and adds nothing, when name is empty or not
// made of lower-case ASCII letters, digits and '-', '_' and '.', when a
// class of that name (built-in or not) exists, or when match is nil. match
// must be safe for concurrent use.
func (s *Set) Register(name string, match func(error) bool) error {
	if err := validName(name); err != nil {
		return err
	}
	if match == nil {
		return fmt.Errorf("%w: %q: nil match func", ErrInvalidClass, name)
	}
	if _, ok := builtin(name); ok {
		return fmt.Errorf("%w: %q: already registered (built in)", ErrInvalidClass, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.classes[name]; ok {
		return fmt.Errorf("%w: %q: already registered", ErrInvalidClass, name)
	}
	if s.classes == nil {
		s.classes = make(map[string]func(error) bool)
	}
	s.classes[name] = match
	return nil
}

func validName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalidClass)
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.' {
			return fmt.Errorf("%w: %q: %q not allowed (use a-z, 0-9, '-', '_', '.')", ErrInvalidClass, name, r)
		}
	}
	return nil
}

// Lookup returns the predicate of the class name and true, or nil and false
// when the set has no such class.
func (s *Set) Lookup(name string) (func(error) bool, bool) {
	if f, ok := builtin(name); ok {
		return f, true
	}
	if s == nil {
		return nil, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.classes[name]
	return f, ok
}

// Names returns the names of every class of the set, built-in and
// registered, sorted.
func (s *Set) Names() []string {
	names := slices.Clone(builtinNames[:])
	if s != nil {
		s.mu.RLock()
		for name := range s.classes {
			names = append(names, name)
		}
		s.mu.RUnlock()
	}
	slices.Sort(names)
	return names
}

// Match returns one predicate for the classes named: it reports whether an
// error belongs to any of them (a name given twice counts once). The
// predicate resolves the names now: it holds no lock and does not change
// when classes are registered later. Match returns an error matching
// [ErrUnknownClass], naming every unknown class and the known ones, when a
// name is not a class of the set, or when no name is given.
func (s *Set) Match(names ...string) (func(error) bool, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no class named", ErrUnknownClass)
	}
	var (
		fns     []func(error) bool
		kept    []string
		unknown []string
	)
	for _, name := range names {
		if slices.Contains(kept, name) || slices.Contains(unknown, fmt.Sprintf("%q", name)) {
			continue
		}
		f, ok := s.Lookup(name)
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		fns, kept = append(fns, f), append(kept, name)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %s (known: %s)", ErrUnknownClass, strings.Join(unknown, ", "), strings.Join(s.Names(), ", "))
	}
	return named(strings.Join(kept, ", "), anyOf(fns)), nil
}
