package manifests

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/outpost-dev/outpost/operator/desired"
)

// A user who came for ExternalBackends gets the CRD, the operator and its
// RBAC: no DNS server and no datapath they did not ask for.
func TestDefaultInstallsOnlyTheOperator(t *testing.T) {
	for _, u := range trees[defaultTree] {
		switch u.GetKind() {
		case "DaemonSet", "ConfigMap":
			t.Errorf("%s installs %s; the datapath and DNS are opt-in components", defaultTree, Ref(u))
		case "Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			if !strings.HasPrefix(u.GetName(), "outpost-operator") && !strings.HasPrefix(u.GetName(), "outpost-externalbackend-") {
				t.Errorf("%s installs %s, which is not the operator's", defaultTree, Ref(u))
			}
		}
		if u.GetKind() == "Namespace" && u.GetLabels()["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("%s: with only the operator in it, outpost-system must enforce Pod Security \"restricted\", labels %v", Ref(u), u.GetLabels())
		}
	}
	if !inTree(defaultTree, "Deployment", "outpost-system", "outpost-operator") {
		t.Errorf("%s does not install the operator", defaultTree)
	}
}

// Beside kube-proxy, the syncer must program only the Services the operator
// writes: its selector matches their label and nothing else's, and its chains
// do not take kube-proxy's names. Replacing kube-proxy is a separate variant
// with kube-proxy's chain names and layout, for every Service.
func TestDatapathVariants(t *testing.T) {
	beside := syncerArgs(t, dnsAndDatapathTree)
	selector, ok := flagValue(beside, "--service-selector")
	if !ok {
		t.Fatalf("%s: the syncer beside kube-proxy has no --service-selector: it would program every Service, args %v", dnsAndDatapathTree, beside)
	}
	sel, err := labels.Parse(selector)
	if err != nil {
		t.Fatalf("--service-selector=%s: %v", selector, err)
	}
	operatorService := labels.Set{desired.LabelManagedBy: desired.ManagedBy}
	if !sel.Matches(operatorService) {
		t.Errorf("--service-selector=%s does not select the operator's Services (labels %v)", selector, operatorService)
	}
	if sel.Matches(labels.Set{"app": "httpd"}) {
		t.Errorf("--service-selector=%s selects an ordinary Service", selector)
	}
	if prefix, ok := flagValue(beside, "--chain-prefix"); ok && prefix == "KUBE" {
		t.Errorf("%s: beside kube-proxy the syncer must not write kube-proxy's KUBE-* chains", dnsAndDatapathTree)
	}

	replace := syncerArgs(t, replaceKubeProxyTree)
	if _, ok := flagValue(replace, "--service-selector"); ok {
		t.Errorf("%s: replacing kube-proxy, the syncer must program every Service, args %v", replaceKubeProxyTree, replace)
	}
	for flag, want := range map[string]string{"--chain-prefix": "KUBE", "--layout": "kube-proxy"} {
		if got, _ := flagValue(replace, flag); got != want {
			t.Errorf("%s: %s=%q, want %q", replaceKubeProxyTree, flag, got, want)
		}
	}
	if inTree(replaceKubeProxyTree, "Deployment", "kube-system", "outpost-coredns") {
		t.Errorf("%s installs the DNS component, which it was not asked for", replaceKubeProxyTree)
	}

	// The syncer runs in the node's network namespace: a metrics port open on
	// every address would be reachable from anywhere the node is.
	for _, tree := range []string{dnsAndDatapathTree, replaceKubeProxyTree} {
		addr, _ := flagValue(syncerArgs(t, tree), "--metrics-bind-address")
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("%s: the syncer's --metrics-bind-address=%q must be on the node's loopback", tree, addr)
		}
	}
}

func syncerArgs(t *testing.T, tree string) []string {
	t.Helper()
	for _, u := range trees[tree] {
		if u.GetKind() == "DaemonSet" && u.GetName() == "outpost-syncer" {
			ds := typed[appsv1.DaemonSet](t, u)
			return ds.Spec.Template.Spec.Containers[0].Args
		}
	}
	t.Fatalf("%s renders no syncer DaemonSet", tree)
	return nil
}

// flagValue returns the value of --name=value among args.
func flagValue(args []string, name string) (string, bool) {
	i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, name+"=") })
	if i < 0 {
		return "", false
	}
	return strings.TrimPrefix(args[i], name+"="), true
}

func inTree(tree, kind, namespace, name string) bool {
	return slices.ContainsFunc(trees[tree], func(u *unstructured.Unstructured) bool {
		return u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name
	})
}
