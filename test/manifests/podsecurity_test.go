package manifests

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The API server's own Pod Security admission judges the Pods each workload
// would create (dry-run, so nothing is stored): the operator and CoreDNS must
// pass the "restricted" profile; the syncer, which needs the host network,
// must be refused there (which also proves the check is live) and admitted in
// outpost-system.
func TestPodsPassPodSecurity(t *testing.T) {
	installed(t)
	ctx := t.Context()
	restricted := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "pss-restricted",
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		},
	}}
	if err := k8s.Create(ctx, restricted); err != nil {
		t.Fatal(err)
	}

	for _, w := range []struct{ kind, namespace, name string }{
		{"Deployment", "outpost-system", "outpost-operator"},
		{"Deployment", "kube-system", "outpost-coredns"},
	} {
		pod := podFrom(t, w.kind, w.namespace, w.name, restricted.Name)
		if err := k8s.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Errorf("%s %s/%s's Pod fails Pod Security \"restricted\": %v", w.kind, w.namespace, w.name, err)
		}
	}

	syncer := podFrom(t, "DaemonSet", "outpost-system", "outpost-syncer", restricted.Name)
	err := k8s.Create(ctx, syncer, client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "hostNetwork") {
		t.Errorf("the syncer's Pod (host network, NET_ADMIN) should be refused under \"restricted\" for hostNetwork, got %v", err)
	}
	syncer = podFrom(t, "DaemonSet", "outpost-system", "outpost-syncer", "outpost-system")
	if err := k8s.Create(ctx, syncer, client.DryRunAll); err != nil {
		t.Errorf("the syncer's Pod is refused in its own namespace outpost-system: %v", err)
	}
}
