package manifests

import (
	"net"
	"slices"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Drains and rolling updates must never take a replicated component down:
// each Deployment runs more than one replica and has a PodDisruptionBudget in
// its namespace that selects its Pods and only its Pods.
func TestDeploymentsSurviveDrains(t *testing.T) {
	var pdbs []*policyv1.PodDisruptionBudget
	for _, u := range rendered {
		if u.GetKind() == "PodDisruptionBudget" {
			pdbs = append(pdbs, typed[policyv1.PodDisruptionBudget](t, u))
		}
	}
	for _, w := range []struct{ namespace, name string }{
		{"outpost-system", "outpost-operator"},
		{"kube-system", "outpost-coredns"},
	} {
		d := typed[appsv1.Deployment](t, find(t, "Deployment", w.namespace, w.name))
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("Deployment %s/%s runs %v replicas: one drained node takes it down", w.namespace, w.name, d.Spec.Replicas)
		}
		podLabels := labels.Set(d.Spec.Template.Labels)
		var budgets []string
		for _, pdb := range pdbs {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				t.Fatalf("PodDisruptionBudget %s/%s: %v", pdb.Namespace, pdb.Name, err)
			}
			if pdb.Namespace == d.Namespace && sel.Matches(podLabels) {
				budgets = append(budgets, pdb.Name)
				if !sel.Matches(labels.Set(d.Spec.Selector.MatchLabels)) {
					t.Errorf("PodDisruptionBudget %s/%s selects more than %s's Pods: it needs their own name label", pdb.Namespace, pdb.Name, d.Name)
				}
				if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
					t.Errorf("PodDisruptionBudget %s/%s: maxUnavailable %v, want 1", pdb.Namespace, pdb.Name, pdb.Spec.MaxUnavailable)
				}
			}
		}
		if len(budgets) != 1 {
			t.Errorf("Deployment %s/%s's Pods are covered by PodDisruptionBudgets %v, want exactly one", w.namespace, w.name, budgets)
		}
	}
	operator := typed[appsv1.Deployment](t, find(t, "Deployment", "outpost-system", "outpost-operator"))
	if !slices.Contains(operator.Spec.Template.Spec.Containers[0].Args, "--leader-elect") {
		t.Error("the operator runs several replicas without --leader-elect: they would reconcile concurrently")
	}
}

// The kubelet restarts a syncer whose /healthz fails: the probe must reach
// the address the syncer serves it on.
func TestSyncerLivenessProbeReachesItsHealthz(t *testing.T) {
	ds := typed[appsv1.DaemonSet](t, find(t, "DaemonSet", "outpost-system", "outpost-syncer"))
	c := ds.Spec.Template.Spec.Containers[0]
	addr, ok := flagValue(c.Args, "--healthz-bind-address")
	if !ok {
		t.Fatal("the syncer's args do not set --healthz-bind-address: the probe would rely on a default it cannot see")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--healthz-bind-address=%s: %v", addr, err)
	}
	p := c.LivenessProbe
	if p == nil || p.HTTPGet == nil {
		t.Fatal("the syncer has no HTTP liveness probe")
	}
	if got := p.HTTPGet.Host + ":" + strconv.Itoa(p.HTTPGet.Port.IntValue()); got != net.JoinHostPort(host, port) || p.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe GETs %s%s, the syncer serves /healthz on %s", got, p.HTTPGet.Path, addr)
	}
	if !ds.Spec.Template.Spec.HostNetwork && host == "127.0.0.1" {
		t.Error("a loopback probe reaches the syncer only with hostNetwork (the kubelet probes from the node)")
	}
}
