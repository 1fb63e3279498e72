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
	"github.com/outpost-dev/outpost/test/testenv"
)

// The cluster's ranges as the operator is told them; addresses inside are refused.
const (
	serviceCIDRs = testenv.DualStackServiceCIDRs
	podCIDRs     = "10.244.0.0/16"
)

var (
	env       *envtest.Environment
	k8s       client.Client
	clientset *kubernetes.Clientset
	cancelMgr context.CancelFunc
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
