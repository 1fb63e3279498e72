package outpost

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/miekg/dns"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/tools/cache"
)

// gcPercent reads the garbage collector's target.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// withGCPercent runs the test with the garbage collector's target set to
// percent, as GOGC would, and puts the test binary's back afterwards.
func withGCPercent(t *testing.T, percent int) {
	t.Helper()
	previous := debug.SetGCPercent(percent)
	t.Cleanup(func() { debug.SetGCPercent(previous) })
}

func TestListingGCTarget(t *testing.T) {
	type step struct {
		begin, end string // the kind whose list begins or is delivered
		want       int    // the target after the step
	}
	for _, tc := range []struct {
		name  string
		gogc  int
		steps []step
	}{
		{"one list", 100, []step{{begin: "service", want: 25}, {end: "service", want: 100}}},
		{"overlapping lists: restored after the last", 100, []step{
			{begin: "service", want: 25}, {begin: "namespace", want: 25},
			{end: "service", want: 25}, {end: "namespace", want: 100},
		}},
		{"a retried list is one list", 100, []step{
			{begin: "service", want: 25}, {begin: "service", want: 25}, {end: "service", want: 100},
		}},
		{"a delivery without a list changes nothing", 100, []step{{end: "service", want: 100}}},
		{"the user's higher GOGC is lowered and restored", 400, []step{{begin: "service", want: 25}, {end: "service", want: 400}}},
		{"the user's lower GOGC is kept", 10, []step{{begin: "service", want: 10}, {end: "service", want: 10}}},
		{"GOGC=off is kept", -1, []step{{begin: "service", want: -1}, {end: "service", want: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withGCPercent(t, tc.gogc)
			g := newListingGC()
			for i, s := range tc.steps {
				if s.begin != "" {
					g.begin(s.begin)
				} else {
					g.end(s.end)
				}
				if got := gcPercent(); got != s.want {
					t.Fatalf("step %d %+v: GC target %d, want %d", i+1, s, got, s.want)
				}
			}
		})
	}
}

// TestFailedListsEndTheListing: a list or streamed list that fails (the API
// server is away) or is stopped before it is complete puts the user's
// target back, and a plain watch never lowers it.
func TestFailedListsEndTheListing(t *testing.T) {
	down := errors.New("fake API: connection refused")
	streamed := true
	stream := meta.ListOptions{SendInitialEvents: &streamed}
	for _, tc := range []struct {
		name       string
		call       func(lw *cache.ListWatch) (watch.Interface, error)
		fail       bool
		wantDuring int
	}{
		{"failed list", func(lw *cache.ListWatch) (watch.Interface, error) {
			_, err := lw.ListWithContext(context.Background(), meta.ListOptions{})
			return nil, err
		}, true, listingGCPercent},
		{"failed streamed list", func(lw *cache.ListWatch) (watch.Interface, error) {
			return lw.WatchWithContext(context.Background(), stream)
		}, true, listingGCPercent},
		{"streamed list stopped before it is complete", func(lw *cache.ListWatch) (watch.Interface, error) {
			return lw.WatchWithContext(context.Background(), stream)
		}, false, listingGCPercent},
		{"plain watch", func(lw *cache.ListWatch) (watch.Interface, error) {
			return lw.WatchWithContext(context.Background(), meta.ListOptions{})
		}, false, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withGCPercent(t, 100)
			g := newListingGC()
			var during int
			api := &cache.ListWatch{
				ListWithContextFunc: func(context.Context, meta.ListOptions) (runtime.Object, error) {
					during = gcPercent()
					return nil, down
				},
				WatchFuncWithContext: func(context.Context, meta.ListOptions) (watch.Interface, error) {
					during = gcPercent()
					if tc.fail {
						return nil, down
					}
					return watch.NewFake(), nil
				},
			}
			w, err := tc.call(g.listWatch("service", api))
			if during != tc.wantDuring {
				t.Errorf("GC target %d during the call, want %d", during, tc.wantDuring)
			}
			if tc.fail != (err != nil) {
				t.Fatalf("error %v, want one: %v", err, tc.fail)
			}
			if w != nil {
				if got := gcPercent(); got != tc.wantDuring {
					t.Errorf("GC target %d while the watch is open, want %d", got, tc.wantDuring)
				}
				w.Stop()
			}
			if got := gcPercent(); got != 100 {
				t.Errorf("GC target %d afterwards, want the user's 100", got)
			}
		})
	}
}

// TestListsRunAtTheListingGCTarget runs the controller through client-go's
// reflector: the initial lists and a relist after the watch expired are
// decoded at the listing target, and serving runs at the user's. With the
// WatchListClient feature on (client-go's default) the reflector streams
// each list as a watch's initial events; with it off it lists.
func TestListsRunAtTheListingGCTarget(t *testing.T) {
	for _, watchList := range []bool{true, false} {
		t.Run(fmt.Sprintf("WatchListClient=%v", watchList), func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, watchList)
			withGCPercent(t, 100)
			var (
				mu     sync.Mutex
				during []int
			)
			observe := func() {
				mu.Lock()
				defer mu.Unlock()
				during = append(during, gcPercent())
			}
			services := newFakeListWatch(
				serviceList("10", apiService("a", "10.96.0.1")),
				serviceList("30", apiService("a", "10.96.0.9")),
			)
			namespaces := newFakeListWatch(namespaceList("1", "ns"))
			for _, f := range []*fakeListWatch{services, namespaces} {
				f.listing, f.streams = observe, watchList
			}
			o := startFakeController(t, services, nil, namespaces)
			if got := gcPercent(); got != 100 {
				t.Errorf("GC target %d once synced, want the user's 100", got)
			}

			gone := apierrors.NewResourceExpired("too old resource version: 10 (25)")
			services.nextWatch(t).Error(&gone.ErrStatus)
			waitFor(t, func() error {
				return hasAnswer(t, o, "a.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "a.ns.svc.cluster.local. 5 IN A 10.96.0.9")
			})
			waitFor(t, func() error {
				if got := gcPercent(); got != 100 {
					return fmt.Errorf("GC target %d after the relist, want the user's 100", got)
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if len(during) != 3 {
				t.Fatalf("%d lists observed, want 3 (services, namespaces, services again)", len(during))
			}
			for i, p := range during {
				if p != listingGCPercent {
					t.Errorf("list %d ran at GC target %d, want %d", i+1, p, listingGCPercent)
				}
			}
		})
	}
}
