package bench

import (
	"strings"
	"testing"
)

// TestContenders builds every contender of every row and checks its outcome
// once, as BenchmarkSuite does before timing, so that `go test ./...` here
// catches a broken contender without running the benchmarks.
func TestContenders(t *testing.T) {
	for _, r := range rows() {
		for _, c := range r.impls {
			t.Run(r.name+"/"+c.name, func(t *testing.T) {
				want := r.want
				if strings.HasPrefix(c.name, "chain") {
					want = wantOK
				}
				e := c.build()
				for range 3 { // the retry rows' endpoint fails twice per call: three calls stay in step
					if err := check(e, want); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
}
