package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/resiliencekit/resilience/middleware"
)

// duration is a time.Duration in the file format: a Go duration string
// ("1.5s", "2m") or a number of seconds (1.5). A value that is not a
// duration is kept as its error, which the layer's decoder reports with
// the field's name (encoding/json would report it without).
type duration struct {
	v   time.Duration
	err error
}

// UnmarshalJSON decodes a duration; see parseDuration.
func (d *duration) UnmarshalJSON(b []byte) error {
	d.v, d.err = parseDuration(b)
	return nil
}

// durations returns the problems of the named durations of one layer.
func durations(layer string, ds ...any) error {
	var errs []error
	for i := 0; i+1 < len(ds); i += 2 {
		if d := ds[i+1].(duration); d.err != nil {
			errs = append(errs, &middleware.ConfigError{Path: layer + "." + ds[i].(string), Reason: d.err.Error()})
		}
	}
	return errors.Join(errs...)
}

// parseDuration is the one parser of the file format's durations: b is a
// JSON string holding a Go duration ("1.5s", "2m") or a JSON number of
// seconds (1.5), or null (zero). The result is exact, or an error saying why
// the value is not a duration: not a duration at all, not finite, past the
// largest Duration (about 292 years: 9223372036.854775807 seconds), or
// nonzero but below 1ns (which would silently become zero, the field's
// default). A number with an exponent is rounded to the nearest nanosecond.
func parseDuration(b []byte) (time.Duration, error) {
	const want = "want a string such as \"1.5s\" or a number of seconds"
	if string(b) == "null" {
		return 0, nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		v, err := time.ParseDuration(s)
		switch {
		case err != nil && strings.Contains(err.Error(), "overflow"):
			return 0, fmt.Errorf("%q is past the largest duration (about 292 years)", s)
		case err != nil:
			return 0, fmt.Errorf("%q is not a duration (%s)", s, want)
		case v == 0 && strings.ContainsAny(s, "123456789"):
			return 0, fmt.Errorf("%q is below 1ns, the smallest nonzero duration", s)
		}
		return v, nil
	}
	text := string(b)
	f, err := strconv.ParseFloat(text, 64)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0):
		return 0, fmt.Errorf("%s seconds is past the largest duration (about 292 years)", text)
	case err != nil && errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s seconds is below 1ns, the smallest nonzero duration", text)
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is not a duration (%s)", text, want)
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, fmt.Errorf("%s is not a finite number of seconds", text)
	}
	var v time.Duration
	if !strings.ContainsAny(text, "eE") {
		// A plain decimal: exact, by the standard parser, which
		// reports an overflow rather than wrapping.
		if v, err = time.ParseDuration(text + "s"); err != nil {
			return 0, fmt.Errorf("%s seconds is past the largest duration (about 292 years)", text)
		}
	} else {
		ns := math.Round(f * float64(time.Second))
		if !(ns < 1<<63 && ns >= -(1<<63)) {
			return 0, fmt.Errorf("%s seconds is past the largest duration (about 292 years)", text)
		}
		v = time.Duration(ns)
	}
	mantissa, _, _ := strings.Cut(strings.ToLower(text), "e")
	if v == 0 && strings.ContainsAny(mantissa, "123456789") { // f may have underflowed to 0
		return 0, fmt.Errorf("%s seconds is below 1ns, the smallest nonzero duration", text)
	}
	return v, nil
}
