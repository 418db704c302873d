package endpointtest_test

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resiliencekit/resilience/endpoint/endpointtest"
	"github.com/resiliencekit/resilience/errclass"
)

// stepCase is one row of testdata/steps.json.
type stepCase struct {
	Name     string  `json:"name"`
	Spec     string  `json:"spec"`
	Kind     string  `json:"kind"`
	Response *string `json:"response"`
	Error    string  `json:"error"`
	Delay    string  `json:"delay"`
	Panic    *string `json:"panic"`
	Bad      bool    `json:"bad"`

	Classes    []string `json:"classes"`
	RetryAfter string   `json:"retry_after"`
}

var kinds = map[string]endpointtest.Kind{
	"ok":    endpointtest.KindOK,
	"err":   endpointtest.KindErr,
	"slow":  endpointtest.KindSlow,
	"stall": endpointtest.KindStall,
	"panic": endpointtest.KindPanic,
	"hang":  endpointtest.KindHang,
}

func loadStepCases(t *testing.T) []stepCase {
	t.Helper()
	data, err := os.ReadFile("testdata/steps.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Doc   string     `json:"_doc"`
		Steps []stepCase `json:"steps"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("testdata/steps.json: %v", err)
	}
	if len(file.Steps) == 0 {
		t.Fatal("testdata/steps.json: no steps")
	}
	return file.Steps
}

func TestParseStep(t *testing.T) {
	tests := loadStepCases(t)
	seen := map[endpointtest.Kind]bool{}
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			got, err := endpointtest.ParseStep(tt.Spec)
			if tt.Bad {
				if err == nil {
					t.Fatalf("ParseStep(%q) = %+v, nil; want an error", tt.Spec, got)
				}
				// The message must name the spec.
				if q := strconv.Quote(tt.Spec); !strings.Contains(err.Error(), q) {
					t.Errorf("error = %q, want it to name %s", err, q)
				}
				if got != (endpointtest.Step{}) {
					t.Errorf("step = %+v, want the zero Step with an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStep(%q): %v", tt.Spec, err)
			}
			wantKind, ok := kinds[tt.Kind]
			if !ok {
				t.Fatalf("testdata: unknown kind %q", tt.Kind)
			}
			seen[wantKind] = true
			if got.Kind != wantKind {
				t.Errorf("Kind = %d, want %d (%s)", got.Kind, wantKind, tt.Kind)
			}
			var wantResp any
			if tt.Response != nil {
				wantResp = *tt.Response
			}
			if got.Response != wantResp {
				t.Errorf("Response = %#v, want %#v", got.Response, wantResp)
			}
			var wantDelay time.Duration
			if tt.Delay != "" {
				if wantDelay, err = time.ParseDuration(tt.Delay); err != nil {
					t.Fatalf("testdata: delay: %v", err)
				}
			}
			if got.Delay != wantDelay {
				t.Errorf("Delay = %v, want %v", got.Delay, wantDelay)
			}
			var wantPanic any
			if tt.Panic != nil {
				wantPanic = *tt.Panic
			}
			if got.Value != wantPanic {
				t.Errorf("Value = %#v, want %#v", got.Value, wantPanic)
			}
			if tt.Kind != "err" {
				if got.Err != nil {
					t.Errorf("Err = %v, want nil", got.Err)
				}
				return
			}
			if !errors.Is(got.Err, endpointtest.ErrScripted) {
				t.Errorf("Err = %v, want it to match ErrScripted", got.Err)
			}
			// An "err:MSG" step's error says MSG: the message is the data.
			if got.Err != nil && got.Err.Error() != tt.Error {
				t.Errorf("Err = %q, want %q", got.Err, tt.Error)
			}
			// It belongs to exactly the error classes listed.
			var classes errclass.Set
			for _, class := range []string{"connection", "timeout", "http-5xx", "http-429"} {
				match, ok := classes.Lookup(class)
				if !ok {
					t.Fatalf("no built-in error class %q", class)
				}
				if got, want := match(got.Err), slices.Contains(tt.Classes, class); got != want {
					t.Errorf("class %s matches = %v, want %v", class, got, want)
				}
			}
			var wantAfter time.Duration
			if tt.RetryAfter != "" {
				if wantAfter, err = time.ParseDuration(tt.RetryAfter); err != nil {
					t.Fatalf("testdata: retry_after: %v", err)
				}
			}
			var gotAfter time.Duration
			// An error with a RetryAfter method is a hint the retry layer honours.
			if ra, ok := errors.AsType[interface {
				error
				RetryAfter() time.Duration
			}](got.Err); ok {
				gotAfter = ra.RetryAfter()
			}
			if gotAfter != wantAfter {
				t.Errorf("RetryAfter = %v, want %v", gotAfter, wantAfter)
			}
		})
	}
	for name, k := range kinds {
		if !seen[k] {
			t.Errorf("testdata has no valid %q step", name)
		}
	}
}

// TestParseStepBareErrIsSentinel checks a bare "err" step returns ErrScripted
// itself, while "err:MSG" returns a distinct error that matches it.
func TestParseStepBareErrIsSentinel(t *testing.T) {
	bare, err := endpointtest.ParseStep("err")
	if err != nil {
		t.Fatal(err)
	}
	if bare.Err != endpointtest.ErrScripted {
		t.Errorf("err step Err = %v, want ErrScripted itself", bare.Err)
	}
	msg, err := endpointtest.ParseStep("err:boom")
	if err != nil {
		t.Fatal(err)
	}
	if msg.Err == endpointtest.ErrScripted || !errors.Is(msg.Err, endpointtest.ErrScripted) {
		t.Errorf("err:boom Err = %#v, want a distinct error matching ErrScripted", msg.Err)
	}
}

func TestConstructors(t *testing.T) {
	errA := errors.New("a")
	tests := []struct {
		name string
		got  endpointtest.Step
		want endpointtest.Step
	}{
		{name: "OK", got: endpointtest.OK(7), want: endpointtest.Step{Kind: endpointtest.KindOK, Response: 7}},
		{name: "Err", got: endpointtest.Err(errA), want: endpointtest.Step{Kind: endpointtest.KindErr, Err: errA}},
		{name: "Slow", got: endpointtest.Slow(time.Second, "r"), want: endpointtest.Step{Kind: endpointtest.KindSlow, Delay: time.Second, Response: "r"}},
		{name: "Stall", got: endpointtest.Stall(2*time.Second, "r"), want: endpointtest.Step{Kind: endpointtest.KindStall, Delay: 2 * time.Second, Response: "r"}},
		{name: "Panic", got: endpointtest.Panic("p"), want: endpointtest.Step{Kind: endpointtest.KindPanic, Value: "p"}},
		{name: "Hang", got: endpointtest.Hang(), want: endpointtest.Step{Kind: endpointtest.KindHang}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("step = %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}
