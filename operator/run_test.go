package operator_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/config/crd"
	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// Another project's envtest suite installs the embedded CRD and runs the
// operator with one call, through exported API only (the README's example),
// and the operator stops with the context.
func TestEnvtestSuiteOfAnotherProject(t *testing.T) {
	assets, err := testenv.Assets() // where this checkout keeps kube-apiserver and etcd
	if err != nil {
		t.Fatal(err)
	}
	crds, err := crd.CustomResourceDefinitions()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, CRDInstallOptions: envtest.CRDInstallOptions{CRDs: crds}}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	opts := operator.DefaultOptions()
	opts.MetricsBindAddress, opts.HealthProbeBindAddress = "0", "0"
	opts.SeveralPerProcess = true // this test binary runs another operator too
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- operator.Run(ctx, cfg, opts) }()

	k8s, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec:       v1alpha1.ExternalBackendSpec{Addresses: []string{"203.0.113.10"}, Ports: []v1alpha1.BackendPort{{Port: 3306}}},
	}
	if err := k8s.Create(ctx, xb); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		return k8s.Get(ctx, client.ObjectKeyFromObject(xb), svc) == nil, nil
	})
	if err != nil {
		t.Fatalf("the operator wrote no Service for the ExternalBackend: %v", err)
	}

	cancel()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("operator.Run returned %v after its context ended, want nil", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("operator.Run did not return after its context ended")
	}
}
