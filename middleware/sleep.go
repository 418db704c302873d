package middleware

import (
	"context"
	"time"
)

// sleep waits d and returns nil, or returns the context's error at once if
// the context ends first. A d of zero or less returns nil at once.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
