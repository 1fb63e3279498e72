package poll

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	tries := 0
	err := Until(context.Background(), time.Millisecond, time.Minute, "third try", func() error {
		if tries++; tries < 3 {
			return fmt.Errorf("try %d", tries)
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Fatalf("Until = %v after %d tries, want nil after 3", err, tries)
	}
}

func TestUntilReportsWhatAndTheLastErrorOnTimeout(t *testing.T) {
	tries := 0
	last := errors.New("")
	err := Until(context.Background(), time.Millisecond, 50*time.Millisecond, "the answer", func() error {
		tries++
		last = fmt.Errorf("not yet (try %d)", tries)
		return last
	})
	if err == nil {
		t.Fatal("Until returned nil for a condition that never holds")
	}
	if !errors.Is(err, last) {
		t.Errorf("Until = %q, does not wrap the last error %q", err, last)
	}
	if want := "the answer: not within 50ms: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Until = %q, want it to start with %q", err, want)
	}
}

func TestUntilStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tries := 0
	err := Until(ctx, time.Millisecond, time.Minute, "cancelled wait", func() error {
		if tries++; tries == 2 {
			cancel()
		}
		return errors.New("never")
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Until = %v, want it to wrap context.Canceled", err)
	}
	if tries != 2 {
		t.Errorf("cond ran %d times, want no try after the cancel", tries)
	}
}
