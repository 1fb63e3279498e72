package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/controller"
	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
)

// TestAdoptHandWrittenServiceUnderLoad moves a hand-written selectorless
// Service (its Endpoints, and the slice the mirroring controller made of
// them) to an ExternalBackend annotated outpost.dev/adopt while new
// connections keep coming to its ClusterIP through the real syncer: none
// may fail, and the Service keeps its ClusterIP, labels and annotations.
func TestAdoptHandWrittenServiceUnderLoad(t *testing.T) {
	w := newDPWorld(t)
	ctx := context.Background()
	const name = "legacy"
	b1, b2, b3 := w.backends[0], w.backends[1], w.backends[2]

	labels := map[string]string{"team": "payments"}
	annotations := map[string]string{"example.com/runbook": "https://runbooks.example.com/legacy"}
	svc, err := w.kube.CoreV1().Services(dpNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: name, Labels: labels, Annotations: annotations},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "p", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt(dpTCPPort),
		}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	handWrittenEndpoints(t, w, name, b1, b2)
	w.startSyncer()
	target := clusterAddr(svc)
	poll.Eventually(t, 30*time.Second, target+" answers", func() error { _, err := w.get(target, time.Second); return err })

	load := w.startDPLoad(target)
	load.waitMore(t, dpRate)

	cfg, err := clientcmd.BuildConfigFromFlags("", w.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	k8s := startInProcessOperator(t, cfg)
	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: name,
			Annotations: map[string]string{v1alpha1.AdoptAnnotation: "true"}},
		Spec: v1alpha1.ExternalBackendSpec{
			// b3 is new: once it answers, the syncer follows the operator's slices.
			Addresses: []string{b1.IP, b2.IP, b3.IP},
			Ports:     []v1alpha1.BackendPort{{Name: "p", Port: 80, TargetPort: dpTCPPort}},
		},
	}
	asked := time.Now()
	if err := k8s.Create(ctx, xb); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, 30*time.Second, "the Service adopted and its mirrored slice replaced", func() error {
		live, err := w.kube.CoreV1().Services(dpNamespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if owner := metav1.GetControllerOf(live); owner == nil || owner.Kind != "ExternalBackend" {
			return fmt.Errorf("Service %s is controlled by %v", name, owner)
		}
		if got := sliceManagers(t, w, name); !slices.Equal(got, []string{"outpost.dev"}) {
			return fmt.Errorf("the Service's EndpointSlices are managed by %v", got)
		}
		return nil
	})
	adopted := time.Since(asked)
	poll.Eventually(t, 30*time.Second, "b3 answers through "+target, func() error {
		for range 20 {
			if who, err := w.get(target, time.Second); err == nil && who == b3.Name {
				return nil
			}
		}
		return errors.New("20 connections, none to b3")
	})
	load.waitMore(t, 3*dpRate)
	logLoad(t, load, "adopting a hand-written Service")
	t.Logf("adopted %s after %s", name, adopted.Round(time.Millisecond))

	after, err := w.kube.CoreV1().Services(dpNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.UID != svc.UID || after.Spec.ClusterIP != svc.Spec.ClusterIP {
		t.Errorf("Service %s is UID %s ClusterIP %s after adoption, want UID %s ClusterIP %s (kept in place)",
			name, after.UID, after.Spec.ClusterIP, svc.UID, svc.Spec.ClusterIP)
	}
	for _, kept := range []struct {
		field     string
		want, got map[string]string
	}{{"label", labels, after.Labels}, {"annotation", annotations, after.Annotations}} {
		for k, v := range kept.want {
			if kept.got[k] != v {
				t.Errorf("after adoption the Service's %s %s is %q, want %q kept", kept.field, k, kept.got[k], v)
			}
		}
	}
	if reasons := w.events("ExternalBackend", name); !slices.Contains(reasons, v1alpha1.EventAdopted) {
		t.Errorf("Events about the ExternalBackend: %v, want %s", reasons, v1alpha1.EventAdopted)
	}
}

// handWrittenEndpoints writes what a user and the endpointslice-mirroring
// controller leave for a selectorless Service (no controller runs here):
// Endpoints, and the EndpointSlice mirrored from them.
func handWrittenEndpoints(t *testing.T, w *dpWorld, name string, bs ...netns.Backend) {
	t.Helper()
	ctx := context.Background()
	subset := corev1.EndpointSubset{Ports: []corev1.EndpointPort{{Name: "p", Port: dpTCPPort, Protocol: corev1.ProtocolTCP}}} //nolint:staticcheck // hand-written Endpoints are what is adopted
	mirrored := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: name + "-mirrored", Labels: map[string]string{
			discovery.LabelServiceName: name,
			discovery.LabelManagedBy:   controller.MirroringControllerName,
		}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("p"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(int32(dpTCPPort))}},
	}
	for _, b := range bs {
		subset.Addresses = append(subset.Addresses, corev1.EndpointAddress{IP: b.IP}) //nolint:staticcheck
		mirrored.Endpoints = append(mirrored.Endpoints, discovery.Endpoint{Addresses: []string{b.IP}, Conditions: discovery.EndpointConditions{Ready: ptr.To(true)}})
	}
	eps := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: dpNamespace, Name: name}, Subsets: []corev1.EndpointSubset{subset}} //nolint:staticcheck
	if _, err := w.kube.CoreV1().Endpoints(dpNamespace).Create(ctx, eps, metav1.CreateOptions{}); err != nil {                            //nolint:staticcheck
		t.Fatal(err)
	}
	if _, err := w.kube.DiscoveryV1().EndpointSlices(dpNamespace).Create(ctx, mirrored, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// sliceManagers lists the managed-by labels of a Service's EndpointSlices.
func sliceManagers(t *testing.T, w *dpWorld, service string) []string {
	t.Helper()
	list, err := w.kube.DiscoveryV1().EndpointSlices(dpNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: discovery.LabelServiceName + "=" + service,
	})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[string]bool{}
	for _, s := range list.Items {
		managers[s.Labels[discovery.LabelManagedBy]] = true
	}
	return slices.Sorted(maps.Keys(managers))
}
