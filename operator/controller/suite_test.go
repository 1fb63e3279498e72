package controller_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// The cluster's ranges as the operator is told them; addresses inside are refused.
const (
	serviceCIDRs = testenv.DualStackServiceCIDRs
	podCIDRs     = "10.244.0.0/16"
	// maxEndpoints is above the 2,500-address slicing spec, and low enough
	// for the limits spec to exceed it within the CRD's 4000 addresses.
	maxEndpoints = 3800
)

var (
	env       *envtest.Environment
	k8s       client.Client
	clientset *kubernetes.Clientset
	cancelMgr context.CancelFunc
	dns       *dnsserver.Server
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "ExternalBackend controller")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))

	var err error
	env, err = testenv.New()
	Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())
	cfg.QPS = -1 // as ctrl.GetConfig in the binary: no client-side rate limit

	k8s, err = client.New(cfg, client.Options{Scheme: operator.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	clientset = kubernetes.NewForConfigOrDie(cfg)

	opts := operator.DefaultOptions()
	opts.MetricsBindAddress = "0"
	opts.HealthProbeBindAddress = "0"
	opts.ServiceCIDRs = serviceCIDRs
	opts.PodCIDRs = podCIDRs
	// Above the default, so that a spec can show slices split at 1000
	// endpoints; the limits specs go past it.
	opts.MaxEndpointsPerBackend = maxEndpoints
	// Every name the operator resolves in these specs is answered by a
	// server the test controls on 127.0.0.1; nothing goes to resolv.conf's.
	dns = dnsserver.Start(GinkgoTB())
	opts.DNSServers = []string{dns.Addr}
	mgr, err := operator.New(cfg, opts)
	Expect(err).NotTo(HaveOccurred())

	var ctx context.Context
	ctx, cancelMgr = context.WithCancel(context.Background())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancelMgr != nil {
		cancelMgr()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
