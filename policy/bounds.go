package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/resiliencekit/resilience/middleware"
)

// The bounds a policy file is read within. Every size taken from the file is
// bounded before it costs memory or time: a file past a bound is an error
// matching middleware.ErrInvalidConfig that names the bound.
const (
	// DefaultMaxBytes is the largest policy file read (1 MiB), unless
	// [Config].MaxBytes says otherwise.
	DefaultMaxBytes = 1 << 20
	// maxPolicyTokens bounds the YAML tokens (keys, values, items) a file may
	// hold before it is parsed: a policy file has tens of them.
	maxPolicyTokens = 20_000
	// maxPolicyNodes bounds the nodes the file's tree holds with every alias
	// expanded where it is used: no alias expands past it.
	maxPolicyNodes = 50_000
	// maxPolicyDepth bounds the nesting of the file.
	maxPolicyDepth = 64
)

// parseBounded parses one YAML (or JSON) document into plain values
// (map[string]any, []any, scalars) with every bound applied: tokens counted
// before parsing, depth and alias expansion counted on the tree, and keys
// exact (plain strings, unique, and lowercase where the schema is).
func parseBounded(file string, data []byte) (any, error) {
	if n := countTokens(data); n > maxPolicyTokens {
		return nil, fmt.Errorf("%s%w: more than %d keys and values", at(file), middleware.ErrInvalidConfig, maxPolicyTokens)
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, fmt.Errorf("%s%w: %v", at(file), middleware.ErrInvalidConfig, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, fmt.Errorf("%s%w: one YAML document expected", at(file), middleware.ErrInvalidConfig)
	}
	c := converter{file: file}
	v, err := c.convert(&root, 0, "")
	if err != nil {
		return nil, err
	}
	return v, nil
}

// countTokens is an upper bound on the YAML nodes of data, counted in one
// pass over the bytes, before the parser spends anything on them.
func countTokens(data []byte) int {
	n := 0
	for _, b := range data {
		switch b {
		case ':', '-', ',', '[', '{', '\n', '*', '&':
			n++
		}
	}
	return n
}

type converter struct {
	file  string
	nodes int
}

// convert turns n into plain values. depth counts mappings from the top: 0
// is the file, 1 a stack, 2 a layer, deeper is a layer's own data (such as
// a fallback value), whose keys are the user's.
func (c *converter) convert(n *yaml.Node, depth int, path string) (any, error) {
	c.nodes++
	if c.nodes > maxPolicyNodes {
		return nil, fmt.Errorf("%s%w: more than %d values with aliases expanded", at(c.file), middleware.ErrInvalidConfig, maxPolicyNodes)
	}
	if depth > maxPolicyDepth {
		return nil, fmt.Errorf("%s%s: %w: nested deeper than %d levels", at(c.file), path, middleware.ErrInvalidConfig, maxPolicyDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.convert(n.Content[0], depth, path)
	case yaml.AliasNode:
		return c.convert(n.Alias, depth, path)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, err := c.convert(e, depth+1, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		spelled := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, err := c.key(n.Content[i], depth, path)
			if err != nil {
				return nil, err
			}
			kp := k
			if path != "" {
				kp = path + "." + k
			}
			if k == "<<" {
				return nil, fmt.Errorf("%s%s: %w: merge keys (<<) are not supported", at(c.file), kp, middleware.ErrInvalidConfig)
			}
			if prev, dup := spelled[k]; dup {
				return nil, fmt.Errorf("%s%s: %w: key given twice (%q and %q)", at(c.file), kp, middleware.ErrInvalidConfig, prev, n.Content[i].Value)
			}
			spelled[k] = n.Content[i].Value
			v, err := c.convert(n.Content[i+1], depth+1, kp)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(c.file, path, n)
	}
	return nil, fmt.Errorf("%s%s: %w: unexpected YAML node", at(c.file), path, middleware.ErrInvalidConfig)
}

// key returns a mapping key as its string. Keys are exact: a stack's layer
// names and a layer's field names are lowercase (Max_Attempts is refused,
// where it used to match max_attempts), and a key must be a plain scalar
// (a !!binary spelling of a key is refused).
func (c *converter) key(n *yaml.Node, depth int, path string) (string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s%s: %w: a key must be a plain string", at(c.file), path, middleware.ErrInvalidConfig)
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!bool", "!!float", "!!null":
	case "!!binary":
		b, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(n.Value), ""))
		return "", fmt.Errorf("%s%s: %w: key %q is !!binary (%q): keys must be plain strings", at(c.file), path, middleware.ErrInvalidConfig, n.Value, b)
	default:
		return "", fmt.Errorf("%s%s: %w: key %q has tag %s: keys must be plain strings", at(c.file), path, middleware.ErrInvalidConfig, n.Value, n.ShortTag())
	}
	k := n.Value
	if (depth == 1 || depth == 2) && k != strings.ToLower(k) {
		kp := k
		if path != "" {
			kp = path + "." + k
		}
		return "", fmt.Errorf("%s%s: %w: keys are exact and lowercase (did you mean %q?)", at(c.file), kp, middleware.ErrInvalidConfig, strings.ToLower(k))
	}
	return k, nil
}

// scalar decodes one scalar node. Numbers keep their exact text where a
// float would change them: a number too large or too precise for float64 is
// kept as written (json.Number), so durations in seconds stay exact.
func scalar(file, path string, n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!int", "!!float":
		if jsonNumber(n.Value) {
			// Kept as written: a float would round 9223372036.854775807
			// and underflow 1e-400 to zero.
			return json.Number(n.Value), nil
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s%s: %w: %q is not a number", at(file), path, middleware.ErrInvalidConfig, n.Value)
		}
		if fv, ok := v.(float64); ok && (math.IsNaN(fv) || math.IsInf(fv, 0)) {
			stack, field, _ := strings.Cut(path, ".")
			return nil, fmt.Errorf("%sstack %q: %w", at(file), stack, &middleware.ConfigError{Path: field, Value: n.Value, Reason: "must be a finite number"})
		}
		return v, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s%s: %w: %v", at(file), path, middleware.ErrInvalidConfig, err)
	}
	return v, nil
}

// jsonNumber reports whether s is a number as JSON writes it (no sign but
// a leading minus, no hex, no underscores, no leading zeros).
func jsonNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
