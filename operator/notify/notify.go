// Package notify turns "this owner needs another look" calls from the
// resolve Refresher and the probe Prober into reconcile requests.
//
// A Source is a controller-runtime source: give it to the controller with
// WatchesRawSource and pass its Notify method to the Refresher and Prober as
// their Options.Notify. Unlike a source.Channel it never blocks the caller
// and never drops a request: before the controller starts it remembers the
// owners in a set, afterwards it adds them to the controller's work queue,
// which merges duplicates.
//
//	wake := notify.NewSource()
//	refresher, _ := resolve.NewRefresher(resolve.Options{Resolver: r, Notify: wake.Notify})
//	ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.ExternalBackend{}).WatchesRawSource(wake).Complete(rec)
package notify

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// Source is a source.Source fed by Notify.
type Source struct {
	mu      sync.Mutex
	queues  []workqueue.TypedRateLimitingInterface[reconcile.Request]
	pending map[types.NamespacedName]struct{}
}

var _ source.Source = (*Source)(nil)

// NewSource returns a Source with nothing pending.
func NewSource() *Source {
	return &Source{pending: map[types.NamespacedName]struct{}{}}
}

// Notify asks for a reconcile of owner. It never blocks.
func (s *Source) Notify(owner types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queues) == 0 {
		s.pending[owner] = struct{}{}
		return
	}
	for _, q := range s.queues {
		q.Add(reconcile.Request{NamespacedName: owner})
	}
}

// Start is called by the controller; it hands over what was notified
// before the controller started. It implements source.Source.
func (s *Source) Start(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues = append(s.queues, q)
	for owner := range s.pending {
		q.Add(reconcile.Request{NamespacedName: owner})
	}
	clear(s.pending)
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, cur := range s.queues {
			if cur == q {
				s.queues = append(s.queues[:i], s.queues[i+1:]...)
				break
			}
		}
	}()
	return nil
}

func (s *Source) String() string { return "outpost notify source" }
