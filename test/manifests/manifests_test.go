package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// The trees a user installs (README, "Installing into a real cluster"):
// config/default is what everyone gets; the overlays add the opt-in
// components.
const (
	defaultTree          = "config/default"
	dnsAndDatapathTree   = "config/overlays/dns-and-datapath"
	replaceKubeProxyTree = "config/overlays/replace-kube-proxy"
	// installTree is what the tests install and check for consistency: the
	// largest tree, so every component's objects meet the API server.
	installTree = dnsAndDatapathTree
)

// Shared by every test in the package: the control plane starts once and
// each tree is rendered once.
var (
	root     = testenv.RepoRoot()
	trees    = map[string][]*unstructured.Unstructured{}
	rendered []*unstructured.Unstructured // trees[installTree]
	cfg      *rest.Config
	k8s      client.Client
)

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; without a logger it prints a stack trace.
	ctrllog.SetLogger(logr.Discard())
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/manifests:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	for _, dir := range []string{defaultTree, dnsAndDatapathTree, replaceKubeProxyTree} {
		objs, err := Render(root, dir)
		if err != nil {
			return 1, err
		}
		trees[dir] = objs
	}
	rendered = trees[installTree]
	env, err := testenv.New()
	if err != nil {
		return 1, err
	}
	// The CRD must come from the rendered tree, applied by the test itself.
	env.CRDDirectoryPaths = nil
	// As in most clusters: setting blockOwnerDeletion on an owner
	// reference needs update on the owner's finalizers, which the
	// operator's RBAC must grant (TestOperatorRunsWithItsOwnRBAC).
	env.ControlPlane.GetAPIServer().Configure().Append("enable-admission-plugins", "OwnerReferencesPermissionEnforcement")
	if cfg, err = env.Start(); err != nil {
		return 1, fmt.Errorf("start envtest: %w", err)
	}
	defer func() { _ = env.Stop() }()
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme.Scheme}); err != nil {
		return 1, err
	}
	return m.Run(), nil
}

var (
	installOnce sync.Once
	installErr  error
)

// installed applies installTree to the API server once: first every
// object with dry-run=All, then for real (nothing runs: envtest has no
// kubelet or controllers, so Deployments and DaemonSets are only stored).
func installed(t *testing.T) {
	t.Helper()
	installOnce.Do(func() {
		ctx := context.Background()
		if installErr = Install(ctx, k8s, rendered, true); installErr != nil {
			installErr = fmt.Errorf("dry run: %w", installErr)
			return
		}
		installErr = Install(ctx, k8s, rendered, false)
	})
	if installErr != nil {
		t.Fatalf("%s does not apply:\n%v", installTree, installErr)
	}
}

func TestDefaultAppliesToAPIServer(t *testing.T) {
	installed(t)
	ctx := t.Context()
	// Everything rendered is now stored, under the name kustomize gave it.
	versions := storedVersions(t)
	// Applying the same tree again is accepted and writes nothing (no
	// resourceVersion moves): a user can re-run the install command.
	if err := Install(ctx, k8s, rendered, false); err != nil {
		t.Fatalf("second apply of config/default: %v", err)
	}
	for ref, after := range storedVersions(t) {
		if before := versions[ref]; after != before {
			t.Errorf("re-applying %s rewrote %s (resourceVersion %s -> %s)", installTree, ref, before, after)
		}
	}
}

// storedVersions reads every rendered object back from the API server and
// returns its resourceVersion by Ref.
func storedVersions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, u := range rendered {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(u.GroupVersionKind())
		if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(u), got); err != nil {
			t.Errorf("%s was applied but cannot be read back: %v", Ref(u), err)
			continue
		}
		out[Ref(u)] = got.GetResourceVersion()
	}
	return out
}

func TestSamplesApplyAgainstTheCRD(t *testing.T) {
	dir := filepath.Join(root, "config", "samples")
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
		missing(t, "config/samples/kustomization.yaml (written with the API)")
	}
	installed(t)
	samples, err := Render(root, "config/samples")
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) == 0 {
		t.Fatal("config/samples renders no objects")
	}
	// The samples are checked against the CRD's OpenAPI and CEL rules; the
	// operator is not running, so storing them would prove nothing more.
	if err := Install(t.Context(), k8s, samples, true); err != nil {
		t.Fatalf("samples refused by the API server:\n%v", err)
	}
}

// missing reports an input another part of the project has not written yet:
// a failure in CI (where everything must be present), a skip on a developer's
// partial checkout.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing", what)
	}
	t.Skipf("%s is missing (would fail with CI=true)", what)
}

// podFrom returns a Pod built from a rendered workload's Pod template, placed
// in namespace, so the API server's Pod admission (Pod Security, priority)
// judges exactly what the workload would create.
func podFrom(t *testing.T, kind, namespace, name, podNamespace string) *corev1.Pod {
	t.Helper()
	spec := podSpecOf(t, find(t, kind, namespace, name))
	return &corev1.Pod{
		ObjectMeta: metaFor(name, podNamespace),
		Spec:       *spec,
	}
}
