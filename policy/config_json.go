package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The config structs are also the declarative file format (see [LoadStacks]).
// These methods make their durations strings ("1.5s", or a number of seconds
// as the guide writes them) and reject unknown keys, so a typo is an error
// rather than a silently ignored default.

// duration is a time.Duration in the file format.
type duration time.Duration

// UnmarshalJSON accepts a Go duration string ("1.5s", "2m") or a number of
// seconds (1.5, as the guide writes delay=1.5); see parseDuration.
func (d *duration) UnmarshalJSON(b []byte) error {
	v, err := parseDuration(b)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
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

// MarshalJSON writes the duration as a Go duration string.
func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// setDuration parses raw (when present) into dst, or returns a *ConfigError
// naming layer.path.
func setDuration(layer, path, field string, raw json.RawMessage, dst *time.Duration) error {
	if raw == nil {
		return nil
	}
	var d duration
	if err := d.UnmarshalJSON(raw); err != nil {
		return &ConfigError{Path: layer + "." + path, Field: field, Reason: err.Error()}
	}
	*dst = time.Duration(d)
	return nil
}

// decodeStrict decodes b into v, rejecting unknown keys and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the object")
	}
	return nil
}

// fileError turns a decoding error of one layer into a *ConfigError naming
// the layer and, where the decoder says it, the field.
func fileError(layer, goType string, err error) error {
	if ce, ok := errors.AsType[*ConfigError](err); ok {
		return ce
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			return &ConfigError{Path: layer, Field: goType, Reason: fmt.Sprintf("must be an object, not a %s", te.Value)}
		}
		field = strings.TrimPrefix(field, "plain.")
		return &ConfigError{Path: layer + "." + field, Reason: fmt.Sprintf("must be of type %s, not a %s", jsonKind(te.Type.String()), te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name, _ := strconv.Unquote(f)
		return &ConfigError{Path: layer + "." + name, Reason: "unknown key"}
	}
	return &ConfigError{Path: layer, Field: goType, Reason: strings.TrimPrefix(msg, "json: ")}
}

func jsonKind(goType string) string {
	switch goType {
	case "int", "int64", "float64", "middleware.duration":
		if goType == "middleware.duration" {
			return "duration"
		}
		return "number"
	case "bool":
		return "boolean"
	case "string":
		return "string"
	}
	return goType
}

// UnmarshalJSON decodes the file form of a RetryConfig: durations as strings,
// unknown keys rejected.
func (c *RetryConfig) UnmarshalJSON(b []byte) error {
	type plain RetryConfig
	aux := struct {
		*plain
		Delay    json.RawMessage
		MaxDelay json.RawMessage
	}{plain: (*plain)(c)}
	if err := decodeStrict(b, &aux); err != nil {
		return fileError("retry", "RetryConfig", err)
	}
	return errors.Join(
		setDuration("retry", "delay", "RetryConfig.Delay", aux.Delay, &c.Delay),
		setDuration("retry", "max_delay", "RetryConfig.MaxDelay", aux.MaxDelay, &c.MaxDelay),
	)
}

// MarshalJSON encodes a RetryConfig in the file form, durations as strings.
func (c RetryConfig) MarshalJSON() ([]byte, error) {
	type plain RetryConfig
	return json.Marshal(struct {
		plain
		Delay    *duration
		MaxDelay *duration
	}{plain: plain(c), Delay: optDuration(c.Delay), MaxDelay: optDuration(c.MaxDelay)})
}

// UnmarshalJSON decodes the file form of a TimeoutConfig.
func (c *TimeoutConfig) UnmarshalJSON(b []byte) error {
	type plain TimeoutConfig
	aux := struct {
		*plain
		Timeout json.RawMessage
	}{plain: (*plain)(c)}
	if err := decodeStrict(b, &aux); err != nil {
		return fileError("timeout", "TimeoutConfig", err)
	}
	return setDuration("timeout", "timeout", "TimeoutConfig.Timeout", aux.Timeout, &c.Timeout)
}

// MarshalJSON encodes a TimeoutConfig in the file form.
func (c TimeoutConfig) MarshalJSON() ([]byte, error) {
	type plain TimeoutConfig
	return json.Marshal(struct {
		plain
		Timeout *duration
	}{plain: plain(c), Timeout: optDuration(c.Timeout)})
}

// UnmarshalJSON decodes the file form of a FallbackConfig.
func (c *FallbackConfig) UnmarshalJSON(b []byte) error {
	type plain FallbackConfig
	if err := decodeStrict(b, (*plain)(c)); err != nil {
		return fileError("fallback", "FallbackConfig", err)
	}
	return nil
}

func optDuration(d time.Duration) *duration {
	if d == 0 {
		return nil
	}
	v := duration(d)
	return &v
}

// UnmarshalJSON decodes the file form of a BulkheadConfig.
func (c *BulkheadConfig) UnmarshalJSON(b []byte) error {
	type plain BulkheadConfig
	aux := struct {
		*plain
		MaxWait json.RawMessage
	}{plain: (*plain)(c)}
	if err := decodeStrict(b, &aux); err != nil {
		return fileError("bulkhead", "BulkheadConfig", err)
	}
	return setDuration("bulkhead", "max_wait", "BulkheadConfig.MaxWait", aux.MaxWait, &c.MaxWait)
}

// MarshalJSON encodes a BulkheadConfig in the file form.
func (c BulkheadConfig) MarshalJSON() ([]byte, error) {
	type plain BulkheadConfig
	return json.Marshal(struct {
		plain
		MaxWait *duration
	}{plain: plain(c), MaxWait: optDuration(c.MaxWait)})
}

// UnmarshalJSON decodes the file form of a RateLimitConfig.
func (c *RateLimitConfig) UnmarshalJSON(b []byte) error {
	type plain RateLimitConfig
	aux := struct {
		*plain
		MaxWait json.RawMessage
	}{plain: (*plain)(c)}
	if err := decodeStrict(b, &aux); err != nil {
		return fileError("rate_limit", "RateLimitConfig", err)
	}
	return setDuration("rate_limit", "max_wait", "RateLimitConfig.MaxWait", aux.MaxWait, &c.MaxWait)
}

// MarshalJSON encodes a RateLimitConfig in the file form.
func (c RateLimitConfig) MarshalJSON() ([]byte, error) {
	type plain RateLimitConfig
	return json.Marshal(struct {
		plain
		MaxWait *duration
	}{plain: plain(c), MaxWait: optDuration(c.MaxWait)})
}

// UnmarshalJSON decodes the file form of a BreakerConfig.
func (c *BreakerConfig) UnmarshalJSON(b []byte) error {
	type plain BreakerConfig
	aux := struct {
		*plain
		ResetTimeout json.RawMessage
		Window       json.RawMessage
	}{plain: (*plain)(c)}
	if err := decodeStrict(b, &aux); err != nil {
		return fileError("circuit_breaker", "BreakerConfig", err)
	}
	return errors.Join(
		setDuration("circuit_breaker", "reset_timeout", "BreakerConfig.ResetTimeout", aux.ResetTimeout, &c.ResetTimeout),
		setDuration("circuit_breaker", "window", "BreakerConfig.Window", aux.Window, &c.Window),
	)
}

// MarshalJSON encodes a BreakerConfig in the file form.
func (c BreakerConfig) MarshalJSON() ([]byte, error) {
	type plain BreakerConfig
	return json.Marshal(struct {
		plain
		ResetTimeout *duration
		Window       *duration
	}{plain: plain(c), ResetTimeout: optDuration(c.ResetTimeout), Window: optDuration(c.Window)})
}
