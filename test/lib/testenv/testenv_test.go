package testenv

import (
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestAdminKubeconfigFileIsAdminAndPrivate(t *testing.T) {
	env, _, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	path := AdminKubeconfigFile(t, env, "testenv-test", "")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig %s: mode %v, want 0600: it holds a cluster-admin key", path, info.Mode().Perm())
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Only an admin may list ClusterRoles right after start: no RBAC is set up.
	if _, err := kube.RbacV1().ClusterRoles().List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("the kubeconfig's user cannot list ClusterRoles: %v", err)
	}

	proxied, err := clientcmd.LoadFromFile(AdminKubeconfigFile(t, env, "testenv-test", "127.0.0.1:6443"))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range proxied.Clusters {
		if c.Server != "https://127.0.0.1:6443" {
			t.Errorf("cluster %s server %q, want the given https://127.0.0.1:6443", name, c.Server)
		}
	}
}
