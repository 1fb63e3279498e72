package clusterranges_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/outpost-dev/outpost/operator/clusterranges"
	"github.com/outpost-dev/outpost/operator/policy"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// The learner is given a real API server: the ranges come from what
// kube-apiserver itself creates (the kubernetes ServiceCIDR, the
// default/kubernetes EndpointSlice) and from objects the test writes as a
// cloud controller or the node IPAM would.
func TestLearnsTheClusterRanges(t *testing.T) {
	g := eventually(t)
	env, cfg, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { g.Expect(env.Stop()).To(Succeed()) })
	k8s, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	g.Expect(err).NotTo(HaveOccurred())

	// No flags: whatever is denied below was learned.
	p, err := policy.Parse("", "", "")
	g.Expect(err).NotTo(HaveOccurred())
	changes := make(chan struct{}, 1)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 clientgoscheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = clusterranges.Setup(mgr, clusterranges.Options{Policy: p, OnChange: func(context.Context) {
		select {
		case changes <- struct{}{}:
		default: // one pending change is enough to re-check everything
		}
	}})
	g.Expect(err).NotTo(HaveOccurred())
	// Started as a controller is: what does it see of the service range?
	atControllerStart := make(chan error, 1)
	g.Expect(mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		atControllerStart <- p.Check(netip.MustParseAddr("10.96.0.1"))
		return nil
	}))).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); g.Expect(<-stopped).To(Succeed()) })

	denial := func(addr string) func() string {
		return func() string {
			if err := p.Check(netip.MustParseAddr(addr)); err != nil {
				return err.Error()
			}
			return ""
		}
	}
	changed := func() bool {
		select {
		case <-changes:
			return true
		default:
			return false
		}
	}

	t.Run("the service range is learned before any controller starts", func(t *testing.T) {
		g := eventually(t)
		g.Expect(<-atControllerStart).To(MatchError(ContainSubstring("10.96.0.1 is inside 10.96.0.0/16, ServiceCIDR kubernetes (learned from the cluster)")))
		g.Expect(denial("fd00:10:96::1")()).To(ContainSubstring("ServiceCIDR kubernetes"))
	})

	t.Run("the API server's endpoints are learned", func(t *testing.T) {
		g := eventually(t)
		var slices discoveryv1.EndpointSliceList
		g.Eventually(func() int {
			g.Expect(k8s.List(ctx, &slices, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "kubernetes"})).To(Succeed())
			n := 0
			for _, s := range slices.Items {
				for _, ep := range s.Endpoints {
					n += len(ep.Addresses)
				}
			}
			return n
		}).ShouldNot(BeZero())
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				for _, a := range ep.Addresses {
					g.Eventually(denial(a)).Should(Equal(a + " is an API server endpoint (learned from the cluster)"))
				}
			}
		}
	})

	t.Run("a node's pod CIDRs and addresses are denied while it exists", func(t *testing.T) {
		g := eventually(t)
		changed()
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "worker-1"},
			Spec:       corev1.NodeSpec{PodCIDR: "10.245.1.0/24", PodCIDRs: []string{"10.245.1.0/24", "fd00:10:245:1::/64"}},
		}
		g.Expect(k8s.Create(ctx, node)).To(Succeed())
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "172.18.0.3"},
			{Type: corev1.NodeExternalIP, Address: "198.51.100.3"},
			{Type: corev1.NodeHostName, Address: "worker-1"},
		}
		g.Expect(k8s.Status().Update(ctx, node)).To(Succeed())

		g.Eventually(denial("10.245.1.7")).Should(Equal("10.245.1.7 is inside 10.245.1.0/24, the pod CIDR of node worker-1 (learned from the cluster)"))
		g.Eventually(denial("fd00:10:245:1::7")).Should(ContainSubstring("the pod CIDR of node worker-1"))
		g.Eventually(denial("172.18.0.3")).Should(Equal("172.18.0.3 is an address of node worker-1 (learned from the cluster)"))
		g.Eventually(denial("198.51.100.3")).Should(ContainSubstring("an address of node worker-1"))
		g.Eventually(changed).Should(BeTrue(), "OnChange after the node appeared")

		g.Expect(k8s.Delete(ctx, node)).To(Succeed())
		g.Eventually(denial("10.245.1.7")).Should(BeEmpty())
		g.Eventually(denial("172.18.0.3")).Should(BeEmpty())
		g.Eventually(changed).Should(BeTrue(), "OnChange after the node went")
	})

	t.Run("a new ServiceCIDR is denied until it is gone", func(t *testing.T) {
		g := eventually(t)
		changed()
		cidr := &networkingv1.ServiceCIDR{
			// kube-controller-manager holds a deleted ServiceCIDR with a
			// finalizer until no ClusterIP in it is left; envtest runs no
			// controller manager, so the test holds it itself.
			ObjectMeta: metav1.ObjectMeta{Name: "extra", Finalizers: []string{"test.outpost.dev/hold"}},
			Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.200.0.0/16"}},
		}
		g.Expect(k8s.Create(ctx, cidr)).To(Succeed())
		g.Eventually(denial("10.200.3.4")).Should(Equal("10.200.3.4 is inside 10.200.0.0/16, ServiceCIDR extra (learned from the cluster)"))
		g.Eventually(changed).Should(BeTrue(), "OnChange after the ServiceCIDR appeared")

		g.Expect(k8s.Delete(ctx, cidr)).To(Succeed())
		// Terminating, it may still hold allocated ClusterIPs.
		g.Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(cidr), cidr); err != nil {
				return err
			}
			if cidr.DeletionTimestamp == nil {
				return fmt.Errorf("%s is not terminating yet", cidr.Name)
			}
			return nil
		}).Should(Succeed())
		g.Consistently(denial("10.200.3.4"), time.Second).Should(ContainSubstring("ServiceCIDR extra"))
		release := client.MergeFrom(cidr.DeepCopy())
		cidr.Finalizers = nil
		g.Expect(k8s.Patch(ctx, cidr, release)).To(Succeed())
		g.Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(cidr), cidr)) }).Should(BeTrue())
		g.Eventually(denial("10.200.3.4")).Should(BeEmpty())
		g.Eventually(changed).Should(BeTrue(), "OnChange after the ServiceCIDR went")
		g.Expect(denial("10.96.0.1")()).To(ContainSubstring("ServiceCIDR kubernetes"))
	})
}

// eventually is a Gomega whose Eventually waits long enough for a slow CI
// machine's informers.
func eventually(t *testing.T) Gomega {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(30 * time.Second)
	g.SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	return g
}

func TestLearnReadsEveryKind(t *testing.T) {
	g := NewWithT(t)
	ranges := clusterranges.Learn(
		[]corev1.Node{{
			ObjectMeta: metav1.ObjectMeta{Name: "old"},
			// Clusters from before dual-stack fill only podCIDR.
			Spec: corev1.NodeSpec{PodCIDR: "10.244.0.0/24"},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "fd00::5"},
				{Type: corev1.NodeInternalDNS, Address: "old.internal"},
			}},
		}},
		[]networkingv1.ServiceCIDR{{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/12", "fd00:10:96::/112"}}}},
		[]discoveryv1.EndpointSlice{{Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.1"}}}}},
	)
	var got []string
	for _, r := range ranges {
		got = append(got, r.Prefix.String()+" "+r.Source)
	}
	g.Expect(strings.Join(got, "\n")).To(Equal(strings.Join([]string{
		"10.244.0.0/24 the pod CIDR of node old",
		"fd00::5/128 an address of node old",
		"10.96.0.0/12 ServiceCIDR kubernetes",
		"fd00:10:96::/112 ServiceCIDR kubernetes",
		"192.0.2.1/32 an API server endpoint",
	}, "\n")))
}
