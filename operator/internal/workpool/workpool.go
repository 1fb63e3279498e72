// Package workpool runs the worker goroutines of the operator's background
// loops (DNS resolution, health probing), which drain a work queue until
// the manager stops them.
package workpool

import (
	"context"
	"sync"
)

// Run starts workers goroutines, each calling next until it returns false,
// then waits for ctx to end, calls shutdown (which must make next return
// false, e.g. by shutting the queue down) and waits for the workers to exit.
func Run(ctx context.Context, workers int, shutdown func(), next func(context.Context) bool) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next(ctx) {
			}
		})
	}
	<-ctx.Done()
	shutdown()
	wg.Wait()
}
