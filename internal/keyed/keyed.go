// Package keyed is a bounded map of values chosen by keys taken from
// requests: a tenant, a host, a route. It holds at most a fixed number of
// keys, evicts the least recently used one whose value may go (the caller
// says which may: a breaker that is open may not) and forgets keys idle for
// a TTL, so that a churn of a million distinct keys holds as much memory as
// the bound allows and no more. Shared by registry.Keyed (breakers) and the
// middleware's keyed rate limit.
package keyed

import (
	"container/list"
	"errors"
	"hash/maphash"
	"sync"
	"time"
)

// ErrFull is returned by [Store.Get] for a new key when the store holds
// its maximum of keys and none of the least recently used ones may be
// evicted.
var ErrFull = errors.New("keyed: every key in use")

// shards is how many independently locked parts a store has.
const shards = 16

// scan is how many of a shard's least recently used entries Get looks at
// for one it may evict.
const scan = 16

// Config configures a [Store] of values of type V.
type Config[V any] struct {
	// Max is the most keys the store holds (spread over its shards, each
	// holding at least one). At least 1.
	Max int
	// TTL is how long a key may stay unused before it is evicted, when
	// Evictable allows. Above 0.
	TTL time.Duration
	// New makes the value of a new key; an error is returned by Get and
	// nothing is stored.
	New func(key string) (V, error)
	// Evictable reports whether v may be evicted at now. Nil: always.
	Evictable func(v V, now time.Time) bool
	// Evicted, if set, is called with each value evicted, outside the
	// store's locks.
	Evicted func(key string, v V)
}

// Store is a bounded, TTL-evicting map from keys to values. Safe for
// concurrent use.
type Store[V any] struct {
	cfg    Config[V]
	seed   maphash.Seed
	shards [shards]shard[V]
}

type shard[V any] struct {
	mu  sync.Mutex
	max int
	m   map[string]*list.Element
	lru list.List // front: most recently used; of *entry[V]
}

type entry[V any] struct {
	key  string
	v    V
	used time.Time
}

// New returns a store configured by cfg, which the caller has validated.
func New[V any](cfg Config[V]) *Store[V] {
	s := &Store[V]{cfg: cfg, seed: maphash.MakeSeed()}
	per := max(1, (cfg.Max+shards-1)/shards)
	for i := range s.shards {
		s.shards[i].max = per
		s.shards[i].m = make(map[string]*list.Element)
	}
	return s
}

// Get returns the value of key, making it with Config.New if the store has
// none, after evicting what it must: the keys idle past the TTL that may go,
// then, when the shard is full, the least recently used one that may go. It
// returns [ErrFull] when the shard is full and none of its scan least
// recently used keys may go.
func (s *Store[V]) Get(key string) (V, error) {
	sh := &s.shards[maphash.String(s.seed, key)%shards]
	now := time.Now()
	sh.mu.Lock()
	if el, ok := sh.m[key]; ok {
		e := el.Value.(*entry[V])
		e.used = now
		sh.lru.MoveToFront(el)
		sh.mu.Unlock()
		return e.v, nil
	}
	var gone []*entry[V]
	gone = s.expire(sh, now, gone)
	if len(sh.m) >= sh.max {
		e := s.victim(sh, now)
		if e == nil {
			sh.mu.Unlock()
			s.evicted(gone)
			var zero V
			return zero, ErrFull
		}
		gone = append(gone, e)
	}
	v, err := s.cfg.New(key)
	if err != nil {
		sh.mu.Unlock()
		s.evicted(gone)
		return v, err
	}
	sh.m[key] = sh.lru.PushFront(&entry[V]{key: key, v: v, used: now})
	sh.mu.Unlock()
	s.evicted(gone)
	return v, nil
}

// expire removes from the back of sh the entries idle past the TTL that
// may go, stopping at the first that is not idle or after looking at scan
// entries that may not go (so that a shard full of open breakers costs a
// bounded scan per new key, not one over the shard). Holds sh.mu.
func (s *Store[V]) expire(sh *shard[V], now time.Time, gone []*entry[V]) []*entry[V] {
	kept := 0
	for el := sh.lru.Back(); el != nil && kept < scan; {
		e := el.Value.(*entry[V])
		if now.Sub(e.used) < s.cfg.TTL {
			break
		}
		prev := el.Prev()
		if s.may(e, now) {
			sh.lru.Remove(el)
			delete(sh.m, e.key)
			gone = append(gone, e)
		} else {
			kept++
		}
		el = prev
	}
	return gone
}

// victim removes and returns the least recently used of the scan last
// entries of sh that may go, or nil. Holds sh.mu.
func (s *Store[V]) victim(sh *shard[V], now time.Time) *entry[V] {
	el := sh.lru.Back()
	for range scan {
		if el == nil {
			return nil
		}
		e := el.Value.(*entry[V])
		if s.may(e, now) {
			sh.lru.Remove(el)
			delete(sh.m, e.key)
			return e
		}
		el = el.Prev()
	}
	return nil
}

func (s *Store[V]) may(e *entry[V], now time.Time) bool {
	return s.cfg.Evictable == nil || s.cfg.Evictable(e.v, now)
}

func (s *Store[V]) evicted(gone []*entry[V]) {
	if s.cfg.Evicted == nil {
		return
	}
	for _, e := range gone {
		s.cfg.Evicted(e.key, e.v)
	}
}

// Len returns how many keys the store holds.
func (s *Store[V]) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Lookup returns the value of key without making one or marking it used.
func (s *Store[V]) Lookup(key string) (V, bool) {
	sh := &s.shards[maphash.String(s.seed, key)%shards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if el, ok := sh.m[key]; ok {
		return el.Value.(*entry[V]).v, true
	}
	var zero V
	return zero, false
}
