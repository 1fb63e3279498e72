package notify

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestSourceDeliversBeforeAndAfterStart(t *testing.T) {
	s := NewSource()
	early := types.NamespacedName{Namespace: "default", Name: "early"}
	late := types.NamespacedName{Namespace: "default", Name: "late"}
	s.Notify(early)
	s.Notify(early) // merged

	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx, q); err != nil {
		t.Fatal(err)
	}
	if q.Len() != 1 {
		t.Fatalf("queue holds %d requests after start, want the 1 pending", q.Len())
	}
	s.Notify(late)
	s.Notify(late)
	if q.Len() != 2 {
		t.Fatalf("queue holds %d requests, want 2", q.Len())
	}
	got := map[types.NamespacedName]bool{}
	for range 2 {
		r, _ := q.Get()
		got[r.NamespacedName] = true
		q.Done(r)
	}
	if !got[early] || !got[late] {
		t.Errorf("got %v", got)
	}
	cancel()
	attached := func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.queues) > 0 }
	for deadline := time.Now().Add(time.Second); attached() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	s.Notify(late)
	if q.Len() != 0 {
		t.Error("a stopped controller's queue still gets requests")
	}
}
