package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	timeout = 20 * time.Second
	poll    = 50 * time.Millisecond
)

var ctx = context.Background()

// newNamespace gives each spec a namespace of its own.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "xb-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// loadSample reads config/samples/<file> into namespace ns.
func loadSample(file, ns string) *v1alpha1.ExternalBackend {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", file))
	Expect(err).NotTo(HaveOccurred())
	xb := &v1alpha1.ExternalBackend{}
	Expect(yaml.UnmarshalStrict(raw, xb)).To(Succeed())
	xb.Namespace = ns
	return xb
}

func backend(ns, name string, spec v1alpha1.ExternalBackendSpec) *v1alpha1.ExternalBackend {
	return &v1alpha1.ExternalBackend{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func tcp(port int32) []v1alpha1.BackendPort {
	return []v1alpha1.BackendPort{{Port: port}}
}

// eventuallyCondition waits until xb's condition has the reason and the
// status reflects the latest generation, and returns the fresh object.
func eventuallyCondition(xb *v1alpha1.ExternalBackend, condType, reason string) *v1alpha1.ExternalBackend {
	GinkgoHelper()
	got := &v1alpha1.ExternalBackend{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(xb), got)).To(Succeed())
		g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		c := meta.FindStatusCondition(got.Status.Conditions, condType)
		g.Expect(c).NotTo(BeNil(), "condition %s", condType)
		g.Expect(c.Reason).To(Equal(reason), "condition %s: %s", condType, c.Message)
	}, timeout, poll).Should(Succeed())
	return got
}

func service(ns, name string) *corev1.Service {
	GinkgoHelper()
	svc := &corev1.Service{}
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc)).To(Succeed())
	return svc
}

func endpoints(ns, name string) *corev1.Endpoints { //nolint:staticcheck
	GinkgoHelper()
	eps := &corev1.Endpoints{} //nolint:staticcheck
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, eps)).To(Succeed())
	return eps
}

// slicesOf lists the EndpointSlices of a Service, sorted by name.
func slicesOf(ns, name string) []discoveryv1.EndpointSlice {
	GinkgoHelper()
	list := &discoveryv1.EndpointSliceList{}
	Expect(k8s.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: name})).To(Succeed())
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items
}

func sliceNames(ns, name string) []string {
	var names []string
	for _, s := range slicesOf(ns, name) {
		names = append(names, s.Name)
	}
	return names
}

// addressesOf lists the addresses of slices with their ready condition.
func addressesOf(slices []discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, s := range slices {
		for _, ep := range s.Endpoints {
			out[ep.Addresses[0]] = ep.Conditions.Ready != nil && *ep.Conditions.Ready
		}
	}
	return out
}

// expectOwnedBy checks the controller owner reference to xb.
func expectOwnedBy(obj client.Object, xb *v1alpha1.ExternalBackend) {
	GinkgoHelper()
	owner := metav1.GetControllerOf(obj)
	Expect(owner).NotTo(BeNil(), "%T %s has no controller", obj, obj.GetName())
	Expect(owner.Kind).To(Equal("ExternalBackend"))
	Expect(owner.Name).To(Equal(xb.Name))
	Expect(owner.UID).To(Equal(xb.UID))
	Expect(obj.GetLabels()).To(HaveKeyWithValue(desired.LabelManagedBy, desired.ManagedBy))
}

// eventReasons lists the reasons of the Events about xb.
func eventReasons(xb *v1alpha1.ExternalBackend) func() []string {
	return func() []string {
		list := &eventsv1.EventList{}
		Expect(k8s.List(ctx, list, client.InNamespace(xb.Namespace))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == xb.Name && e.Regarding.Kind == "ExternalBackend" {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

func eventNotes(xb *v1alpha1.ExternalBackend) func() string {
	return func() string {
		list := &eventsv1.EventList{}
		Expect(k8s.List(ctx, list, client.InNamespace(xb.Namespace))).To(Succeed())
		var notes string
		for _, e := range list.Items {
			if e.Regarding.Name == xb.Name {
				notes += fmt.Sprintf("%s: %s\n", e.Reason, e.Note)
			}
		}
		return notes
	}
}

func ptr[T any](v T) *T { return &v }
