package outcomes_test

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func unmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
