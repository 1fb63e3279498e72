package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
)

const (
	crashBackends = 200
	crashKills    = 50
	crashNames    = 10 // DNS names the resolved backends pick from
)

// crashName is the i-th DNS name of the crash test and its address.
func crashName(i int) (string, string) {
	return fmt.Sprintf("n%d.example.test", i), fmt.Sprintf("198.51.100.%d", 100+i)
}

// randomSpec is one of the modes, chosen at random: static (IPv4, IPv6 or
// both), resolved, alias or headless.
func randomSpec(rng *rand.Rand) v1alpha1.ExternalBackendSpec {
	ports := []v1alpha1.BackendPort{{Port: 80}}
	// Not 192.0.2.0/24: envtest's API server advertises an address there,
	// which the operator denies.
	v4 := fmt.Sprintf("203.0.113.%d", 1+rng.IntN(200))
	v6 := fmt.Sprintf("2001:db8::%x", 1+rng.IntN(200))
	name, _ := crashName(rng.IntN(crashNames))
	switch rng.IntN(6) {
	case 0:
		return v1alpha1.ExternalBackendSpec{Addresses: []string{v4}, Ports: ports}
	case 1:
		return v1alpha1.ExternalBackendSpec{Addresses: []string{v6, v4}, Ports: ports}
	case 2:
		return v1alpha1.ExternalBackendSpec{Addresses: []string{name}, Ports: ports}
	case 3:
		return v1alpha1.ExternalBackendSpec{Addresses: []string{name, v4}, Ports: ports}
	case 4:
		return v1alpha1.ExternalBackendSpec{ExternalName: name, Ports: ports}
	default:
		return v1alpha1.ExternalBackendSpec{Addresses: []string{v4, v6}, Ports: ports, Headless: true}
	}
}

// churn creates, updates (switching modes) and deletes backends until ctx
// ends, and counts what it did.
func churn(ctx context.Context, c *operatorCluster, ns string, seed uint64, ops *atomic.Int64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	for ctx.Err() == nil {
		name := fmt.Sprintf("b%03d", rng.IntN(crashBackends))
		xb := &v1alpha1.ExternalBackend{}
		err := c.k8s.Get(ctx, crclient.ObjectKey{Namespace: ns, Name: name}, xb)
		switch {
		case apierrors.IsNotFound(err):
			err = c.k8s.Create(ctx, &v1alpha1.ExternalBackend{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: randomSpec(rng)})
		case err != nil:
		case rng.IntN(4) == 0:
			err = c.k8s.Delete(ctx, xb)
		default:
			xb.Spec = randomSpec(rng)
			err = c.k8s.Update(ctx, xb)
		}
		if err == nil {
			ops.Add(1)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestOperatorCrashConsistency kills bin/outpost-operator with SIGKILL at
// 50 random moments while a client creates, updates and deletes 200
// ExternalBackends in every mode, then checks that the cluster converges to
// exactly the objects the backends left stand for: no orphan, no
// duplicate, no object of a deleted backend, every status current. envtest
// has no garbage collector: the operator alone cleans up.
func TestOperatorCrashConsistency(t *testing.T) {
	c := startOperatorCluster(t)
	dns := dnsserver.Start(t)
	for i := range crashNames {
		name, addr := crashName(i)
		dns.SetA(name, uint32(1+i%5), addr)
	}
	const ns = "crash"
	createNamespace(t, c, ns)
	flags := []string{"--dns-server", dns.Addr}

	ctx, stopChurn := context.WithCancel(context.Background())
	var ops atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() { churn(ctx, c, ns, uint64(w+1), &ops) })
	}
	rng := rand.New(rand.NewPCG(42, 42))
	began := time.Now()
	for range crashKills {
		p := c.startOperator(t, flags...)
		// The scenario: a crash at a random moment, from before the caches
		// synced to the middle of a burst of writes.
		time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
		p.kill()
	}
	stopChurn()
	wg.Wait()
	t.Logf("%d kills in %s while the client made %d writes", crashKills, time.Since(began).Round(time.Second), ops.Load())

	start := time.Now()
	c.startOperator(t, flags...)
	var last error
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if last = converged(context.Background(), c, ns); last == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not converged 2m after the last restart: %v", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("converged %s after the last restart; %d objects of backends deleted while no operator ran were swept at a start",
		time.Since(start).Round(100*time.Millisecond), c.logged("deleted the child of a deleted ExternalBackend"))
}

// converged says what differs between the cluster and what its
// ExternalBackends stand for; nil when nothing does.
func converged(ctx context.Context, c *operatorCluster, ns string) error {
	var backends v1alpha1.ExternalBackendList
	var services corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	var endpoints corev1.EndpointsList //nolint:staticcheck // legacy Endpoints are written on purpose
	for _, list := range []crclient.ObjectList{&backends, &services, &slices, &endpoints} {
		if err := c.k8s.List(ctx, list, crclient.InNamespace(ns)); err != nil {
			return err
		}
	}
	byName := map[string]*v1alpha1.ExternalBackend{}
	for i := range backends.Items {
		byName[backends.Items[i].Name] = &backends.Items[i]
	}
	var problems []string
	owned := func(kind string, obj metav1.Object, child string) *v1alpha1.ExternalBackend {
		ref := metav1.GetControllerOf(obj)
		xb := byName[child]
		if ref == nil || xb == nil || ref.UID != xb.UID {
			problems = append(problems, fmt.Sprintf("%s %s is an orphan", kind, obj.GetName()))
			return nil
		}
		return xb
	}
	svcs := map[string]*corev1.Service{}
	for i := range services.Items {
		s := &services.Items[i]
		if xb := owned("Service", s, s.Name); xb != nil {
			svcs[s.Name] = s
		}
	}
	sliceAddrs := map[string][]string{} // backend -> sorted addresses of its slices
	sliceNames := map[string][]string{}
	for _, s := range slices.Items {
		svc := s.Labels[discoveryv1.LabelServiceName]
		if xb := owned("EndpointSlice", &s, svc); xb != nil {
			sliceNames[svc] = append(sliceNames[svc], s.Name)
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready == nil || !*ep.Conditions.Ready {
					problems = append(problems, fmt.Sprintf("EndpointSlice %s: %v not ready", s.Name, ep.Addresses))
				}
				sliceAddrs[svc] = append(sliceAddrs[svc], ep.Addresses...)
			}
		}
	}
	hasEndpoints := map[string]bool{}
	for i := range endpoints.Items {
		e := &endpoints.Items[i]
		if owned("Endpoints", e, e.Name) != nil {
			hasEndpoints[e.Name] = true
		}
	}
	for name, xb := range byName {
		if err := backendConverged(xb, svcs[name], sliceNames[name], sliceAddrs[name], hasEndpoints[name]); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("%d problem(s), first: %s", len(problems), strings.Join(problems[:min(5, len(problems))], "; "))
}

// backendConverged compares one backend's objects and status with its spec.
func backendConverged(xb *v1alpha1.ExternalBackend, svc *corev1.Service, sliceNames, sliceAddrs []string, hasEndpoints bool) error {
	if xb.Status.ObservedGeneration != xb.Generation {
		return fmt.Errorf("observedGeneration %d, generation %d", xb.Status.ObservedGeneration, xb.Generation)
	}
	ready := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue {
		return fmt.Errorf("Ready %+v", ready)
	}
	if svc == nil {
		return errors.New("no Service")
	}
	if desired.IsAlias(xb) {
		if svc.Spec.Type != corev1.ServiceTypeExternalName || svc.Spec.ExternalName != xb.Spec.ExternalName {
			return fmt.Errorf("alias Service %s %q", svc.Spec.Type, svc.Spec.ExternalName)
		}
		if len(sliceNames) > 0 || hasEndpoints {
			return fmt.Errorf("alias with slices %v or Endpoints (%v)", sliceNames, hasEndpoints)
		}
		return nil
	}
	if (svc.Spec.ClusterIP == corev1.ClusterIPNone) != xb.Spec.Headless || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return fmt.Errorf("Service type %s clusterIP %q, headless %v", svc.Spec.Type, svc.Spec.ClusterIP, xb.Spec.Headless)
	}
	var want, wantSlices []string
	for _, a := range xb.Spec.Addresses {
		if _, err := netip.ParseAddr(a); err == nil {
			want = append(want, a)
			continue
		}
		for i := range crashNames {
			if name, addr := crashName(i); name == a {
				want = append(want, addr)
			}
		}
	}
	for _, a := range want {
		family := "ipv4"
		if netip.MustParseAddr(a).Is6() {
			family = "ipv6"
		}
		if s := xb.Name + "-" + family; !slices.Contains(wantSlices, s) {
			wantSlices = append(wantSlices, s)
		}
	}
	slices.Sort(want)
	slices.Sort(wantSlices)
	got := slices.Sorted(slices.Values(sliceAddrs))
	gotSlices := slices.Sorted(slices.Values(sliceNames))
	if !slices.Equal(got, want) || !slices.Equal(gotSlices, wantSlices) {
		return fmt.Errorf("slices %v with %v, want %v with %v", gotSlices, got, wantSlices, want)
	}
	if !hasEndpoints {
		return errors.New("no Endpoints")
	}
	return nil
}
