package outpost

import (
	"context"
	"runtime/debug"
	"sync"

	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// listingGCPercent is the garbage collector's target while a kind is being
// listed. A list is a burst of garbage: every object arrives whole, is
// shrunk by the transform and dropped, and the index it feeds is the only
// memory that stays. At the default GOGC of 100 the heap may grow to twice
// what is live before a collection, so the peak of a sync or a relist,
// which is what a memory limit must allow for and what gets CoreDNS
// OOM-killed, is set by that garbage and not by the index. A tighter target
// for the few seconds of a list costs CPU then, and nothing while serving.
const listingGCPercent = 25

// listingGC lowers the garbage collector's target while any kind is being
// listed (the initial sync, and every relist after a watch could not be
// resumed) and puts back the one it found when the last list has been
// handed to its queue. A target the user set tighter, or GOGC=off, is left
// alone.
type listingGC struct {
	mu      sync.Mutex
	listing map[string]bool // kind: a list has begun and not been delivered
	saved   int             // the target to restore; valid while listing is non-empty
}

func newListingGC() *listingGC {
	return &listingGC{listing: make(map[string]bool)}
}

// begin marks kind as listing. A list that fails and is retried begins
// again; that is one list.
func (g *listingGC) begin(kind string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.listing[kind] {
		return
	}
	if len(g.listing) == 0 {
		// SetGCPercent is also the only way to read the target; one
		// below listingGCPercent (GOGC=off is -1) is put back.
		g.saved = debug.SetGCPercent(listingGCPercent)
		if g.saved < listingGCPercent {
			debug.SetGCPercent(g.saved)
		}
	}
	g.listing[kind] = true
}

// end marks kind's list as delivered.
func (g *listingGC) end(kind string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.listing[kind] {
		return
	}
	delete(g.listing, kind)
	if len(g.listing) == 0 {
		debug.SetGCPercent(g.saved)
	}
}

// listWatch wraps lw so that a list of kind, paginated or streamed as a
// watch with initial events, begins a listing, and one that fails ends it:
// while the API server is away the reflector retries for as long as it
// takes, and serving should not pay for the lower target all that time.
func (g *listingGC) listWatch(kind string, lw *cache.ListWatch) *cache.ListWatch {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts meta.ListOptions) (runtime.Object, error) {
			g.begin(kind)
			list, err := lw.ListWithContext(ctx, opts)
			if err != nil {
				g.end(kind)
			}
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts meta.ListOptions) (watch.Interface, error) {
			if opts.SendInitialEvents == nil || !*opts.SendInitialEvents {
				return lw.WatchWithContext(ctx, opts)
			}
			g.begin(kind)
			w, err := lw.WatchWithContext(ctx, opts)
			if err != nil {
				g.end(kind)
				return nil, err
			}
			return &listingWatch{Interface: w, end: func() { g.end(kind) }}, nil
		},
	}
}

// listingWatch is a watch that streams a list. The reflector stops it when
// the stream fails before the list is complete; stopping it once the list
// has been delivered (and the listing ended) changes nothing.
type listingWatch struct {
	watch.Interface
	end func()
}

func (w *listingWatch) Stop() {
	w.end()
	w.Interface.Stop()
}

// listingQueue is a kind's queue that ends its listing when the reflector
// hands it the list. It embeds the RealFIFO itself, not cache.Queue, so
// that the reflector still finds its Transformer and shrinks a streamed
// list's objects as they arrive.
type listingQueue struct {
	*cache.RealFIFO
	kind string
	gc   *listingGC
}

func (q *listingQueue) Replace(items []any, resourceVersion string) error {
	defer q.gc.end(q.kind)
	return q.RealFIFO.Replace(items, resourceVersion)
}
