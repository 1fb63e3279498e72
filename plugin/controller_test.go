package outpost

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	api "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// fakeListWatch stands in for the API server of one kind: each List takes
// the next prepared list, each Watch opens a watch the test drives.
type fakeListWatch struct {
	lists   chan runtime.Object
	watches chan *watch.FakeWatcher
	// firstWatch, when set, is the error of the first Watch call.
	firstWatch error
	watched    int
	// listing, when set, is called as each list begins.
	listing func()
	// streams serves a watch with initial events (a streamed list) from
	// the next prepared list; without it such a watch is refused, and
	// the reflector lists instead.
	streams bool
}

func newFakeListWatch(lists ...runtime.Object) *fakeListWatch {
	f := &fakeListWatch{lists: make(chan runtime.Object, len(lists)), watches: make(chan *watch.FakeWatcher, 10)}
	for _, l := range lists {
		f.lists <- l
	}
	return f
}

func (f *fakeListWatch) List(meta.ListOptions) (runtime.Object, error) {
	if f.listing != nil {
		f.listing()
	}
	select {
	case l := <-f.lists:
		return l, nil
	default:
		return nil, errors.New("fake API: no further list prepared")
	}
}

func (f *fakeListWatch) Watch(opts meta.ListOptions) (watch.Interface, error) {
	if opts.SendInitialEvents != nil {
		if !f.streams {
			return nil, errors.New("fake API: no watch-list, list instead")
		}
		return f.stream()
	}
	f.watched++
	if f.watched == 1 && f.firstWatch != nil {
		return nil, f.firstWatch
	}
	w := watch.NewFakeWithChanSize(10, false)
	f.watches <- w
	return w, nil
}

// stream serves the next prepared list as a watch's initial events, ended
// by the bookmark that says so, and leaves the watch open.
func (f *fakeListWatch) stream() (watch.Interface, error) {
	l, err := f.List(meta.ListOptions{})
	if err != nil {
		return nil, err
	}
	items, err := apimeta.ExtractList(l)
	if err != nil {
		return nil, err
	}
	w := watch.NewFakeWithChanSize(len(items)+1, false)
	for _, item := range items {
		w.Add(item)
	}
	end := items[0].DeepCopyObject() // an object of the kind, carrying the list's version
	endMeta, err := apimeta.Accessor(end)
	if err != nil {
		return nil, err
	}
	listMeta, err := apimeta.ListAccessor(l)
	if err != nil {
		return nil, err
	}
	endMeta.SetResourceVersion(listMeta.GetResourceVersion())
	endMeta.SetAnnotations(map[string]string{meta.InitialEventsAnnotationKey: "true"})
	w.Action(watch.Bookmark, end)
	f.watches <- w
	return w, nil
}

// nextWatch returns the next watch the plugin opens.
func (f *fakeListWatch) nextWatch(t *testing.T) *watch.FakeWatcher {
	t.Helper()
	select {
	case w := <-f.watches:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the plugin opened no watch within 10s")
		return nil
	}
}

// startFakeController runs the plugin's controller against fake list-watches
// (a kind without one is not watched) and waits for the first sync.
func startFakeController(t *testing.T, services, slices, namespaces *fakeListWatch) *Outpost {
	t.Helper()
	o := New([]string{"cluster.local.", "in-addr.arpa."})
	o.upstream = testUpstream{}
	c := &controller{o: o, stopCh: make(chan struct{}), gc: newListingGC()}
	o.ctrl = c
	listWatch := func(kind string, f *fakeListWatch) cache.ListerWatcher {
		return c.gc.listWatch(kind, &cache.ListWatch{ListFunc: f.List, WatchFunc: f.Watch})
	}
	c.add(kindService, &api.Service{}, listWatch(kindService, services), toService)
	if slices != nil {
		c.add(kindEndpointSlice, &discovery.EndpointSlice{}, listWatch(kindEndpointSlice, slices), toEndpointSlice)
	}
	c.add(kindNamespace, &api.Namespace{}, listWatch(kindNamespace, namespaces), toNamespace)
	c.run()
	t.Cleanup(func() { o.stop() })
	waitFor(t, func() error {
		if !o.informersSynced.Load() {
			return errors.New("informers not synced")
		}
		return nil
	})
	return o
}

func namespaceList(rv string, names ...string) *api.NamespaceList {
	l := &api.NamespaceList{ListMeta: meta.ListMeta{ResourceVersion: rv}}
	for _, n := range names {
		l.Items = append(l.Items, api.Namespace{ObjectMeta: meta.ObjectMeta{Name: n}})
	}
	return l
}

func apiService(name, clusterIP string) api.Service {
	return api.Service{
		ObjectMeta: meta.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       api.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: []api.ServicePort{{Name: "http", Port: 80, Protocol: api.ProtocolTCP}}},
	}
}

func serviceList(rv string, items ...api.Service) *api.ServiceList {
	return &api.ServiceList{ListMeta: meta.ListMeta{ResourceVersion: rv}, Items: items}
}

func apiSlice(name, service, ip string) *discovery.EndpointSlice {
	return &discovery.EndpointSlice{
		ObjectMeta:  meta.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discovery.LabelServiceName: service}},
		AddressType: discovery.AddressTypeIPv4,
		Endpoints:   []discovery.Endpoint{{Addresses: []string{ip}}},
	}
}

func sliceList(rv string, items ...*discovery.EndpointSlice) *discovery.EndpointSliceList {
	l := &discovery.EndpointSliceList{ListMeta: meta.ListMeta{ResourceVersion: rv}}
	for _, es := range items {
		l.Items = append(l.Items, *es)
	}
	return l
}

// answer asks o one question and returns the response.
func answer(t *testing.T, o *Outpost, name string, qtype uint16) *dns.Msg {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if _, err := o.ServeDNS(context.Background(), rec, m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rec.Msg
}

// hasAnswer reports whether the answer to name is exactly rcode and rrs
// (in presentation format, TTL 5).
func hasAnswer(t *testing.T, o *Outpost, name string, qtype uint16, rcode int, rrs ...string) error {
	t.Helper()
	got := answer(t, o, name, qtype)
	want := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		parsed, err := dns.NewRR(rr)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = parsed
	}
	tc := test.Case{Qname: name, Qtype: qtype, Rcode: rcode, Answer: want}
	if rcode != dns.RcodeSuccess || len(rrs) == 0 {
		tc.Ns = []dns.RR{soa(plugin.Zones(o.Zones).Matches(name))}
	}
	o.idx.modified.Store(testSerial)
	if err := sortAndCheck(got, tc); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", dns.TypeToString[qtype], name, err, got)
	}
	return nil
}

// waitFor retries f until it returns nil, for up to 10 s.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRelistAfterExpiredWatch: when etcd has compacted past the watch's
// resource version, the API server ends the watch with 410 Gone (or refuses
// to open it). The plugin must list again and answer from that list: a
// Service deleted meanwhile goes (with its PTR), one changed meanwhile
// changes, one created meanwhile appears.
func TestRelistAfterExpiredWatch(t *testing.T) {
	gone := apierrors.NewResourceExpired("too old resource version: 10 (25)")
	for _, tc := range []struct {
		name   string
		expire func(t *testing.T, services *fakeListWatch)
	}{
		{"watch ends with 410 Gone", func(t *testing.T, services *fakeListWatch) {
			services.nextWatch(t).Error(&gone.ErrStatus)
		}},
		{"watch refused with 410 Gone", func(t *testing.T, services *fakeListWatch) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			services := newFakeListWatch(
				serviceList("10", apiService("a", "10.96.0.1"), apiService("b", "10.96.0.2")),
				serviceList("30", apiService("a", "10.96.0.9"), apiService("c", "10.96.0.3")),
			)
			if tc.name == "watch refused with 410 Gone" {
				services.firstWatch = gone
			}
			o := startFakeController(t, services, nil, newFakeListWatch(namespaceList("1", "ns")))
			if tc.name != "watch refused with 410 Gone" {
				if err := hasAnswer(t, o, "b.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "b.ns.svc.cluster.local. 5 IN A 10.96.0.2"); err != nil {
					t.Fatalf("before the relist: %v", err)
				}
			}
			tc.expire(t, services)
			waitFor(t, func() error {
				return hasAnswer(t, o, "a.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "a.ns.svc.cluster.local. 5 IN A 10.96.0.9")
			})
			for _, err := range []error{
				hasAnswer(t, o, "b.ns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError),
				hasAnswer(t, o, "2.0.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError),
				hasAnswer(t, o, "1.0.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError),
				hasAnswer(t, o, "c.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "c.ns.svc.cluster.local. 5 IN A 10.96.0.3"),
			} {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestSliceMovedToAnotherService: an EndpointSlice whose
// kubernetes.io/service-name label changes belongs to the new Service
// only; nothing of it stays in the old one's answers, whether the change
// comes as a watch event or in a relist.
func TestSliceMovedToAnotherService(t *testing.T) {
	headless := func(name string) api.Service { return apiService(name, api.ClusterIPNone) }
	for _, tc := range []struct {
		name string
		// move changes the label and returns the watch open after it.
		move func(t *testing.T, slices *fakeListWatch, moved *discovery.EndpointSlice) *watch.FakeWatcher
	}{
		{"watch event", func(t *testing.T, slices *fakeListWatch, moved *discovery.EndpointSlice) *watch.FakeWatcher {
			w := slices.nextWatch(t)
			w.Modify(moved)
			return w
		}},
		{"relist", func(t *testing.T, slices *fakeListWatch, moved *discovery.EndpointSlice) *watch.FakeWatcher {
			slices.lists <- sliceList("20", moved)
			gone := apierrors.NewResourceExpired("too old resource version")
			slices.nextWatch(t).Error(&gone.ErrStatus)
			return slices.nextWatch(t)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slices := newFakeListWatch(sliceList("10", apiSlice("web-abc", "old", "198.51.100.1")))
			o := startFakeController(t,
				newFakeListWatch(serviceList("10", headless("old"), headless("new"))),
				slices,
				newFakeListWatch(namespaceList("1", "ns")))
			if err := hasAnswer(t, o, "old.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "old.ns.svc.cluster.local. 5 IN A 198.51.100.1"); err != nil {
				t.Fatalf("before the move: %v", err)
			}
			w := tc.move(t, slices, apiSlice("web-abc", "new", "198.51.100.1"))
			waitFor(t, func() error {
				return hasAnswer(t, o, "new.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "new.ns.svc.cluster.local. 5 IN A 198.51.100.1")
			})
			for _, err := range []error{
				hasAnswer(t, o, "old.ns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError), // headless without endpoints
				hasAnswer(t, o, "198-51-100-1.old.ns.svc.cluster.local.", dns.TypeA, dns.RcodeNameError),
				hasAnswer(t, o, "1.100.51.198.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess,
					"1.100.51.198.in-addr.arpa. 5 IN PTR 198-51-100-1.new.ns.svc.cluster.local."),
			} {
				if err != nil {
					t.Error(err)
				}
			}
			// Deleting it (the event carries the slice as the API last had it) leaves nothing.
			w.Delete(apiSlice("web-abc", "new", "198.51.100.1"))
			waitFor(t, func() error {
				return hasAnswer(t, o, "1.100.51.198.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError)
			})
		})
	}
}
