package manifests

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const chartDir = "charts/outpost"

// renderChart renders charts/outpost with values over its defaults, as
// `helm template` would, CRDs included, through the Helm SDK.
func renderChart(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := loader.Load(filepath.Join(root, chartDir))
	if err != nil {
		t.Fatalf("load %s: %v", chartDir, err)
	}
	vals, err := chartutil.ToRenderValues(ch, values,
		chartutil.ReleaseOptions{Name: "outpost", Namespace: "outpost-system", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatalf("%s values: %v", chartDir, err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatalf("render %s: %v", chartDir, err)
	}
	var stream bytes.Buffer
	for _, crd := range ch.CRDObjects() {
		stream.WriteString("\n---\n")
		stream.Write(crd.File.Data)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, ".yaml") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		stream.WriteString("\n---\n")
		stream.WriteString(files[name])
	}
	objs, err := Decode(&stream)
	if err != nil {
		t.Fatalf("decode the render of %s: %v", chartDir, err)
	}
	return objs
}

// kustomize suffixes generated ConfigMaps with a hash of their content so
// that a changed Corefile rolls the Deployment; Helm has no such hash (the
// Corefile's reload plugin picks changes up instead). The comparison drops it.
var generatedName = regexp.MustCompile(`"(outpost-coredns)-[a-z0-9]{10}"`)

func withoutNameHashes(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, u := range objs {
		data, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(generatedName.ReplaceAll(data, []byte(`"$1"`)), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// The chart is the kustomize trees in Helm's form: with its defaults it is
// config/default, with a component enabled the overlay that adds it, object
// for object; and the API server accepts each render.
func TestChartRendersTheKustomizeTrees(t *testing.T) {
	for _, tc := range []struct {
		tree   string
		values map[string]any
	}{
		{defaultTree, nil},
		{dnsAndDatapathTree, map[string]any{"dns": map[string]any{"enabled": true}, "datapath": map[string]any{"enabled": true}}},
		{replaceKubeProxyTree, map[string]any{"datapath": map[string]any{"enabled": true, "replaceKubeProxy": true}}},
	} {
		t.Run(tc.tree, func(t *testing.T) {
			chart := renderChart(t, tc.values)
			sameObjects(t, chartDir, chart, tc.tree, withoutNameHashes(t, trees[tc.tree]))
			if err := Install(t.Context(), k8s, chart, true); err != nil {
				t.Errorf("the API server refuses %s rendered for %s:\n%v", chartDir, tc.tree, err)
			}
		})
	}
}

// The operator's policy and limits values become its flags; unset ones leave
// the binary's defaults alone.
func TestChartPassesTheOperatorPolicy(t *testing.T) {
	objs := renderChart(t, map[string]any{"operator": map[string]any{
		"policy": map[string]any{
			"deniedCIDRs": []any{"192.0.2.0/24", "2001:db8::/32"}, "serviceCIDRs": []any{"10.96.0.0/12"},
			"podCIDRs": []any{"10.244.0.0/16"}, "clusterDomain": "example.internal",
			"deniedHostnames": []any{"metadata.google.internal"}, "learnClusterRanges": false,
			"allowedServiceTypes": []any{"ClusterIP"},
		},
		"limits":    map[string]any{"maxEndpointsPerBackend": 50, "maxRecordsPerAnswer": 8, "maxEndpointPorts": 1000, "maxConcurrentReconciles": 4},
		"extraArgs": []any{"--write-endpoints=false"},
		"replicas":  3,
	}})
	var d *appsv1.Deployment
	for _, u := range objs {
		if u.GetKind() == "Deployment" && u.GetName() == "outpost-operator" {
			d = typed[appsv1.Deployment](t, u)
		}
	}
	if d == nil {
		t.Fatal("no operator Deployment rendered")
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	for _, want := range []string{
		"--denied-cidrs=192.0.2.0/24,2001:db8::/32", "--service-cidr=10.96.0.0/12", "--pod-cidr=10.244.0.0/16",
		"--cluster-domain=example.internal", "--denied-hostnames=metadata.google.internal", "--learn-cluster-ranges=false",
		"--allowed-service-types=ClusterIP", "--max-endpoints-per-backend=50", "--max-records-per-answer=8",
		"--max-endpoint-ports=1000", "--max-concurrent-reconciles=4", "--write-endpoints=false", "--leader-elect",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("operator args %v lack %s", args, want)
		}
	}
	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d, want 3", *d.Spec.Replicas)
	}
}

// Helm installs CRDs only from the chart's crds/, reads only files inside the
// chart, and kustomize reads only inside config/, so each holds a copy of
// the generated CRD, the generated ClusterRoles and the Corefile: the copies
// must not drift (`make manifests` rewrites the CRD and role copies,
// `make coredns-corefile` the Corefiles).
func TestChartCopiesAreCurrent(t *testing.T) {
	for original, chartCopy := range map[string]string{
		"config/crd/bases/outpost.dev_externalbackends.yaml": chartDir + "/crds/outpost.dev_externalbackends.yaml",
		"config/components/dns/Corefile":                     chartDir + "/files/Corefile",
		"config/rbac/role.yaml":                              chartDir + "/files/rbac/operator-role.yaml",
		"config/components/datapath/role.yaml":               chartDir + "/files/rbac/syncer-role.yaml",
		"config/components/dns/role.yaml":                    chartDir + "/files/rbac/coredns-role.yaml",
	} {
		want, err := os.ReadFile(filepath.Join(root, original))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, chartCopy))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: run `make manifests coredns-corefile`", chartCopy, original)
		}
	}
}
