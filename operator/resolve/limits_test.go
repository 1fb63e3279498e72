package resolve

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/types"

	"github.com/outpost-dev/outpost/test/lib/dnsserver"
)

// An answer with more records than MaxRecordsPerAnswer gives the smallest
// addresses, whatever order the server lists them in, and says how many it
// left out.
func TestRefresherKeepsTheSmallestRecordsOfABigAnswer(t *testing.T) {
	t.Parallel()
	srv := dnsserver.Start(t)
	changed := make(chan types.NamespacedName, 100)
	r, err := NewRefresher(Options{
		Resolver:            newResolver(t, time.Second, srv.Addr),
		Notify:              func(o types.NamespacedName) { changed <- o },
		MaxRecordsPerAnswer: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	o := owner("big")
	check := func(when string) {
		t.Helper()
		st, _ := r.Lookup(o, "big.example.test")
		if want := addrs("198.51.100.1", "198.51.100.3", "198.51.100.5"); !slices.Equal(st.Addrs(), want) || st.Omitted != 2 {
			t.Errorf("%s: kept %v, %d left out; want the 3 smallest %v and 2 left out", when, st.Addrs(), st.Omitted, want)
		}
	}
	srv.SetA("big.example.test", 1, "198.51.100.9", "198.51.100.3", "198.51.100.7", "198.51.100.1", "198.51.100.5")
	// A long MaxTTL: its quarter, after which a confirmation is reported
	// anyway (lastResolved), must not pass during the test.
	if err := r.Ensure(o, []string{"big.example.test"}, Spec{MinTTL: time.Second, MaxTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no answer within 5s")
	}
	check("first answer")

	// The server lists the same records in another order: the kept set is
	// the same, so nothing changes and the reconciler is not woken.
	srv.SetA("big.example.test", 1, "198.51.100.5", "198.51.100.1", "198.51.100.7", "198.51.100.3", "198.51.100.9")
	asked := len(srv.Queries("big.example.test", dns.TypeA))
	deadline := time.Now().Add(10 * time.Second)
	// Two more queries: the answer to the first of them has been folded in.
	for len(srv.Queries("big.example.test", dns.TypeA)) < asked+2 {
		if time.Now().After(deadline) {
			t.Fatal("not re-resolved within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	check("reordered answer")
	if len(changed) > 0 {
		t.Errorf("a reordered answer woke the reconciler")
	}
}
