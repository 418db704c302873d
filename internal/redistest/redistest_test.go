package redistest_test

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/resiliencekit/resilience/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDecide sweeps the lookup result and the CI variable: an installed
// redis-server always runs; an absent one skips on a developer's machine and
// fails (never skips) under CI.
func TestDecide(t *testing.T) {
	absent := &exec.Error{Name: "redis-server", Err: exec.ErrNotFound}
	tests := []struct {
		name    string
		lookErr error
		ci      string
		want    redistest.Verdict
	}{
		{name: "installed, no CI", lookErr: nil, ci: "", want: redistest.Run},
		{name: "installed, CI", lookErr: nil, ci: "true", want: redistest.Run},
		{name: "absent, no CI", lookErr: absent, ci: "", want: redistest.Skip},
		{name: "absent, CI=false", lookErr: absent, ci: "false", want: redistest.Skip},
		{name: "absent, CI=0", lookErr: absent, ci: "0", want: redistest.Skip},
		{name: "absent, CI=garbage", lookErr: absent, ci: "yes please", want: redistest.Skip},
		{name: "absent, CI=true", lookErr: absent, ci: "true", want: redistest.Fail},
		{name: "absent, CI=TRUE", lookErr: absent, ci: "TRUE", want: redistest.Fail},
		{name: "absent, CI=1", lookErr: absent, ci: "1", want: redistest.Fail},
		{name: "other lookup error, CI=true", lookErr: errors.New("permission denied"), ci: "true", want: redistest.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := redistest.Decide(tt.lookErr, tt.ci)
			if got != tt.want {
				t.Errorf("Decide(%v, %q) = %d, want %d", tt.lookErr, tt.ci, got, tt.want)
			}
			if got != redistest.Run && !strings.Contains(msg, "make redis") {
				t.Errorf("message %q does not say how to install redis-server (make redis)", msg)
			}
		})
	}
}

// TestStartRuns checks that Start serves on the address it reports.
func TestStartRuns(t *testing.T) {
	srv := redistest.Start(t)
	if srv.Addr == "" {
		t.Fatal("Addr is empty")
	}
}
