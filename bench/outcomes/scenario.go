package outcomes

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// duration is a time.Duration written as a string ("250ms") in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"10s\"", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// Fault is a fault over a window of the run, [Start, End).
type Fault struct {
	// Kind is one of the Fault constants (FaultFail, FaultHang, ...).
	Kind  string   `json:"kind"`
	Start duration `json:"start"`
	End   duration `json:"end"`
	// Factor multiplies the service time (FaultSlow) or sets the offered
	// load as a multiple of the capacity (FaultOverload).
	Factor float64 `json:"factor"`
	// Share is the share of calls that fail (FaultFailShare), in [0, 1].
	Share float64 `json:"share"`
	// Instances lists the instances the fault hits, counting from 0.
	// Default (empty): every instance. Not for FaultOverload, which is
	// the callers' doing.
	Instances []int `json:"instances"`
}

func (f Fault) active(at time.Duration) bool {
	return f.Kind != FaultNone && at >= time.Duration(f.Start) && at < time.Duration(f.End)
}

// hits reports whether the fault is active at a time on an instance.
func (f Fault) hits(at time.Duration, instance int) bool {
	return f.active(at) && (len(f.Instances) == 0 || slices.Contains(f.Instances, instance))
}

// partial reports whether the fault spares some instances.
func (f Fault) partial(instances int) bool {
	return len(f.Instances) > 0 && len(f.Instances) < instances
}

// Window is the fault's length.
func (f Fault) Window() time.Duration { return time.Duration(f.End - f.Start) }

// Scenario is one row of testdata/scenarios.json.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Duration is the whole run. Required.
	Duration duration `json:"duration"`
	// Rate is the callers' calls per second outside an overload. Required.
	Rate float64 `json:"rate"`
	// Deadline is each caller call's deadline. Default 1s.
	Deadline   duration         `json:"deadline"`
	Dependency DependencyConfig `json:"dependency"`
	Fault      Fault            `json:"fault"`
}

// LoadScenarios reads a JSON array of scenarios, applies the defaults and
// checks each row.
func LoadScenarios(path string) ([]Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ss []Scenario
	if err := json.Unmarshal(data, &ss); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range ss {
		s := &ss[i]
		if s.Deadline == 0 {
			s.Deadline = duration(time.Second)
		}
		s.Dependency = s.Dependency.withDefaults()
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("%s: scenario %d (%q): %w", path, i, s.Name, err)
		}
	}
	return ss, nil
}

func (s Scenario) check() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("no name")
	case s.Duration <= 0 || s.Rate <= 0:
		return fmt.Errorf("duration and rate must be above zero")
	case s.Fault.Start < 0 || s.Fault.End < s.Fault.Start || s.Fault.End > s.Duration:
		return fmt.Errorf("fault window [%v, %v) not inside the run", time.Duration(s.Fault.Start), time.Duration(s.Fault.End))
	}
	switch s.Fault.Kind {
	case FaultNone, FaultFail, FaultHang:
	case FaultSlow, FaultOverload:
		if s.Fault.Factor <= 0 {
			return fmt.Errorf("fault %s needs a factor above zero", s.Fault.Kind)
		}
	case FaultFailShare:
		if s.Fault.Share < 0 || s.Fault.Share > 1 {
			return fmt.Errorf("fault share %v not in [0, 1]", s.Fault.Share)
		}
	default:
		return fmt.Errorf("unknown fault kind %q", s.Fault.Kind)
	}
	for _, i := range s.Fault.Instances {
		if i < 0 || i >= s.Dependency.Instances {
			return fmt.Errorf("fault instance %d not in [0, %d)", i, s.Dependency.Instances)
		}
	}
	if len(s.Fault.Instances) > 0 && s.Fault.Kind == FaultOverload {
		return fmt.Errorf("an overload fault hits every instance: it takes no instances")
	}
	return nil
}

// rateAt is the offered rate at a time into the run.
func (s Scenario) rateAt(at time.Duration) float64 {
	if s.Fault.Kind == FaultOverload && s.Fault.active(at) {
		return s.Fault.Factor * s.Dependency.Capacity()
	}
	return s.Rate
}
