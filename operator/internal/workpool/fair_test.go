package workpool

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestFairQueueServesGroupsInTurn(t *testing.T) {
	q := NewFairDelayingQueue(func(item string) string { ns, _, _ := strings.Cut(item, "/"); return ns })
	defer q.ShutDown()
	// Namespace a queues a backlog before b and c queue one item each.
	for i := range 100 {
		q.Add(fmt.Sprintf("a/%d", i))
	}
	q.Add("b/0")
	q.Add("c/0")
	q.Add("b/1")
	var got []string
	for range 6 {
		item, _ := q.Get()
		got = append(got, item)
		q.Done(item)
	}
	if want := "a/0 b/0 c/0 a/1 b/1 a/2"; strings.Join(got, " ") != want {
		t.Errorf("served %v, want %s: b and c wait for at most one item of a each", got, want)
	}
	if q.Len() != 97 {
		t.Errorf("%d items left, want 97", q.Len())
	}
}

func TestFairQueueKeepsDelaysAndDeduplicates(t *testing.T) {
	q := NewFairDelayingQueue(func(item string) string { return item[:1] })
	defer q.ShutDown()
	q.Add("a1")
	q.Add("a1") // already queued: one item
	q.AddAfter("b1", 50*time.Millisecond)
	item, _ := q.Get()
	q.Done(item)
	if item != "a1" || q.Len() != 0 {
		t.Fatalf("got %s with %d left, want a1 once", item, q.Len())
	}
	start := time.Now()
	if item, _ := q.Get(); item != "b1" || time.Since(start) < 40*time.Millisecond {
		t.Errorf("got %s after %s, want b1 after its delay", item, time.Since(start))
	}
}
