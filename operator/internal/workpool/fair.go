package workpool

import "k8s.io/client-go/util/workqueue"

// NewFairDelayingQueue returns a delaying work queue that hands out ready
// items round-robin across the groups groupOf puts them in (the operator
// groups by namespace), instead of first come, first served. So one tenant
// with many slow targets (each holding a worker until its timeout) delays
// another tenant's next item by at most one item per busy group, not by its
// whole backlog.
func NewFairDelayingQueue[T comparable](groupOf func(T) string) workqueue.TypedDelayingInterface[T] {
	return workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[T]{
		Queue: workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[T]{Queue: newFairQueue(groupOf)}),
	})
}

// fairQueue is a workqueue.Queue with one FIFO per group, served in turn.
// The work queue calls it with its lock held and never pushes an item that
// is already queued.
type fairQueue[T comparable] struct {
	groupOf func(T) string
	fifos   map[string][]T
	turn    []string // groups with items, in serving order
	len     int
}

func newFairQueue[T comparable](groupOf func(T) string) *fairQueue[T] {
	return &fairQueue[T]{groupOf: groupOf, fifos: map[string][]T{}}
}

// Touch keeps an item where it is: a re-added item does not jump ahead.
func (q *fairQueue[T]) Touch(T) {}

func (q *fairQueue[T]) Push(item T) {
	g := q.groupOf(item)
	if len(q.fifos[g]) == 0 {
		q.turn = append(q.turn, g)
	}
	q.fifos[g] = append(q.fifos[g], item)
	q.len++
}

func (q *fairQueue[T]) Len() int { return q.len }

// Pop takes the oldest item of the group whose turn it is; that group goes
// to the back of the line if it has more.
func (q *fairQueue[T]) Pop() T {
	g := q.turn[0]
	q.turn = q.turn[1:]
	fifo := q.fifos[g]
	item := fifo[0]
	var zero T
	fifo[0] = zero // let the item be collected
	if fifo = fifo[1:]; len(fifo) > 0 {
		q.fifos[g] = fifo
		q.turn = append(q.turn, g)
	} else {
		delete(q.fifos, g)
	}
	q.len--
	return item
}
