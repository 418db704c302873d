package policy_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/middleware"
	"github.com/resiliencekit/resilience/policy"
)

// TestPolicyDurations sweeps the durations a policy file can hold, in YAML
// and in JSON: each is the exact Duration, or an error matching
// ErrInvalidConfig that names the field. 9223372036.854775807 seconds used to
// give a negative duration, and 1e-10 seconds silently the 1s default.
func TestPolicyDurations(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string // the value as written in YAML
		json    string // the value as written in JSON ("" when YAML only)
		want    time.Duration
		wantErr bool
	}{
		{name: "string", yaml: "1.5s", json: `"1.5s"`, want: 1500 * time.Millisecond},
		{name: "seconds", yaml: "1.5", json: "1.5", want: 1500 * time.Millisecond},
		{name: "seconds exactly", yaml: "0.3", json: "0.3", want: 300 * time.Millisecond},
		{name: "integer seconds", yaml: "300", json: "300", want: 5 * time.Minute},
		{name: "exponent", yaml: "1.5e0", json: "1.5e0", want: 1500 * time.Millisecond},
		{name: "one nanosecond", yaml: "1e-9", json: "1e-9", want: time.Nanosecond},
		{name: "one nanosecond decimal", yaml: "0.000000001", json: "0.000000001", want: time.Nanosecond},
		{name: "zero is the default", yaml: "0", json: "0", want: 0},
		{name: "largest duration as a string", yaml: "2562047h47m16.854775807s", json: `"2562047h47m16.854775807s"`, want: math.MaxInt64},
		{name: "largest duration in seconds", yaml: "9223372036.854775807", json: "9223372036.854775807", want: math.MaxInt64},
		{name: "below 1ns, underflowing a float", yaml: "1e-400", json: "1e-400", wantErr: true},
		{name: "NaN", yaml: ".nan", wantErr: true},
		{name: "infinity", yaml: ".inf", wantErr: true},
		{name: "negative infinity", yaml: "-.inf", wantErr: true},
		{name: "hex seconds", yaml: "0x10", want: 16 * time.Second},
		{name: "past the largest in seconds", yaml: "9223372036.854775808", json: "9223372036.854775808", wantErr: true},
		{name: "past the largest as a string", yaml: "2562047h47m16.854775808s", json: `"2562047h47m16.854775808s"`, wantErr: true},
		{name: "1e30 seconds", yaml: "1e30", json: "1e30", wantErr: true},
		{name: "1e400 seconds", yaml: "1e400", json: "1e400", wantErr: true},
		{name: "below 1ns", yaml: "1e-10", json: "1e-10", wantErr: true},
		{name: "below 1ns decimal", yaml: "0.0000000001", json: "0.0000000001", wantErr: true},
		{name: "below 1ns string", yaml: "0.1ns", json: `"0.1ns"`, wantErr: true},
		{name: "exponent string", yaml: "1e-10s", json: `"1e-10s"`, wantErr: true},
		{name: "negative", yaml: "-1s", json: `"-1s"`, wantErr: true},
		{name: "negative seconds", yaml: "-1", json: "-1", wantErr: true},
		{name: "empty string", yaml: `""`, json: `""`, wantErr: true},
		{name: "not a duration", yaml: "soon", json: `"soon"`, wantErr: true},
		{name: "boolean", yaml: "true", json: "true", wantErr: true},
	}
	for _, tt := range tests {
		for _, form := range []string{"yaml", "json"} {
			file := "s:\n  retry: {delay: " + tt.yaml + "}\n"
			if form == "json" {
				if tt.json == "" {
					continue
				}
				file = `{"s": {"retry": {"delay": ` + tt.json + `}}}`
			}
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				set, err := policy.Parse([]byte(file))
				if tt.wantErr {
					if !errors.Is(err, middleware.ErrInvalidConfig) {
						t.Fatalf("Parse(%q) = %v, want an error matching ErrInvalidConfig", file, err)
					}
					if !hasPath(err, "retry.delay") {
						t.Errorf("Parse(%q) = %v, want a *ConfigError with Path retry.delay", file, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Parse(%q) = %v", file, err)
				}
				if got := mustStack(t, set, "s").Retry.Delay; got != tt.want {
					t.Errorf("delay = %v (%d), want %v (%d)", got, got, tt.want, tt.want)
				}
			})
		}
	}
}
