package operator_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// A node that joins takes its pod range away from every ExternalBackend
// already publishing an address in it, and gives it back when it leaves,
// without the backend changing.
func TestLearnedRangesRecheckPublishedBackends(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(60 * time.Second)
	g.SetDefaultEventuallyPollingInterval(100 * time.Millisecond)

	env, cfg, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { g.Expect(env.Stop()).To(Succeed()) })
	opts := operator.DefaultOptions()
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	opts.SeveralPerProcess = true // run_test.go runs another in this binary
	mgr, err := operator.New(cfg, opts)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); g.Expect(<-stopped).To(Succeed()) })
	k8s, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "vm"},
		Spec: v1alpha1.ExternalBackendSpec{
			Addresses: []string{"203.0.113.10", "10.245.1.7"},
			Ports:     []v1alpha1.BackendPort{{Port: 80}},
		},
	}
	g.Expect(k8s.Create(ctx, xb)).To(Succeed())
	// The message of 10.245.1.7's status row; "" while it is published.
	denial := func() string {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(xb), xb)).To(Succeed())
		if xb.Status.ReadyEndpoints != 1 && xb.Status.ReadyEndpoints != 2 {
			return "not reconciled yet"
		}
		for _, row := range xb.Status.Endpoints {
			if row.Address == "10.245.1.7" {
				return row.Message
			}
		}
		return "no row"
	}
	g.Eventually(denial).Should(BeEmpty())

	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-1"},
		Spec:       corev1.NodeSpec{PodCIDRs: []string{"10.245.1.0/24"}},
	}
	g.Expect(k8s.Create(ctx, node)).To(Succeed())
	g.Eventually(denial).Should(Equal("10.245.1.7 is inside 10.245.1.0/24, the pod CIDR of node worker-1 (learned from the cluster)"))
	g.Expect(xb.Status.ReadyEndpoints).To(BeEquivalentTo(1))

	g.Expect(k8s.Delete(ctx, node)).To(Succeed())
	g.Eventually(denial).Should(BeEmpty())
	g.Expect(xb.Status.ReadyEndpoints).To(BeEquivalentTo(2))
}
