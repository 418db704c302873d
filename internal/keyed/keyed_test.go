package keyed_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/resiliencekit/resilience/internal/keyed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type val struct {
	key  string
	pin  bool // may not be evicted
	made int
}

func newStore(max int, ttl time.Duration, evicted *[]string) *keyed.Store[*val] {
	made := 0
	return keyed.New(keyed.Config[*val]{
		Max: max, TTL: ttl,
		New: func(k string) (*val, error) {
			if k == "bad" {
				return nil, errors.New("no")
			}
			made++
			return &val{key: k, made: made}, nil
		},
		Evictable: func(v *val, _ time.Time) bool { return !v.pin },
		Evicted:   func(k string, _ *val) { *evicted = append(*evicted, k) },
	})
}

// TestStoreBound: a full shard evicts its least recently used key that may
// go; pinned keys stay; with every candidate pinned, a new key is ErrFull;
// a key comes back as a new value.
func TestStoreBound(t *testing.T) {
	var evicted []string
	s := newStore(16, time.Hour, &evicted) // 16 shards of one key each
	for i := range 1000 {
		if _, err := s.Get(fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() > 16 {
		t.Errorf("Len = %d after 1000 keys, want at most 16", s.Len())
	}
	if len(evicted) != 1000-s.Len() {
		t.Errorf("evicted %d, want %d", len(evicted), 1000-s.Len())
	}
	// Pin everything held: no new key fits in a full shard.
	full := 0
	for i := range 1000 {
		if v, ok := s.Lookup(fmt.Sprint(i)); ok {
			v.pin = true
		}
	}
	for i := 1000; i < 1100; i++ {
		if _, err := s.Get(fmt.Sprint(i)); errors.Is(err, keyed.ErrFull) {
			full++
		}
	}
	if full == 0 {
		t.Error("no ErrFull with every held key pinned")
	}
	if _, err := s.Get("bad"); err == nil {
		t.Error("New's error not returned")
	}
}

// TestStoreTTL: keys unused for the TTL are evicted by the next Get of its
// shard, unless pinned; a used key is not.
func TestStoreTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evicted []string
		s := newStore(1600, time.Minute, &evicted)
		for i := range 100 {
			s.Get(fmt.Sprint(i))
		}
		pinned, _ := s.Lookup("7")
		pinned.pin = true
		time.Sleep(30 * time.Second)
		s.Get("42") // used: its TTL starts again
		time.Sleep(31 * time.Second)
		for i := range 1000 { // touch every shard
			s.Get(fmt.Sprint("new", i))
		}
		for _, k := range []string{"7", "42"} {
			if _, ok := s.Lookup(k); !ok {
				t.Errorf("key %s evicted, want kept (pinned or used)", k)
			}
		}
		if _, ok := s.Lookup("3"); ok {
			t.Error("key 3 unused for 61s with a TTL of 1m: still held")
		}
		if len(evicted) != 98 {
			t.Errorf("evicted %d keys, want 98", len(evicted))
		}
	})
}
