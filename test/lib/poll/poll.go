// Package poll waits for a condition the way the suites and `make run` do:
// try it, and while it fails try again until a timeout, then report what
// was awaited with the condition's last error. A condition says why it is
// not met yet by returning an error, so a timeout explains itself ("CoreDNS
// answers: not within 30s: read udp 127.0.0.1:1053: connection refused")
// instead of a bare "timed out".
//
// The loop is apimachinery's wait.PollUntilContextTimeout; this package only
// keeps the last error.
package poll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Interval is the pause between two tries of Eventually: short enough that
// a test waits little past the moment the condition holds, long enough not
// to load the 2-core CI machine with retries.
const Interval = 50 * time.Millisecond

// Until calls cond every interval until it returns nil. It gives up when
// timeout passes, with an error naming what and cond's last error, or when
// ctx ends, with an error that wraps ctx's (so errors.Is(err,
// context.Canceled) still tells a Ctrl-C from a timeout). cond runs at least
// once.
func Until(ctx context.Context, interval, timeout time.Duration, what string, cond func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w (last try: %v)", what, ctx.Err(), last)
	default:
		return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
	}
}

// Eventually is Until for tests: it polls every Interval and fails tb on
// timeout.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Until(context.Background(), Interval, timeout, what, cond); err != nil {
		tb.Fatal(err)
	}
}
