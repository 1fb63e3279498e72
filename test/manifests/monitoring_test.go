package manifests

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// monitoringTree is applied on top of an install (README, "Monitoring");
// its PromQL is checked against the binaries by hack/monitoring.
const monitoringTree = "config/monitoring"

func renderMonitoring(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(root, monitoringTree)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// selectorOf reads spec.selector of a ServiceMonitor or PodMonitor.
func selectorOf(t *testing.T, u *unstructured.Unstructured) labels.Selector {
	t.Helper()
	raw, _, _ := unstructured.NestedMap(u.Object, "spec", "selector")
	sel := &metav1.LabelSelector{}
	if err := jsonConvert(raw, sel); err != nil {
		t.Fatalf("%s spec.selector: %v", Ref(u), err)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		t.Fatalf("%s spec.selector %v selects everything or nothing valid (%v)", Ref(u), raw, err)
	}
	return s
}

func jsonConvert(in map[string]any, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// The ServiceMonitors scrape Services the install tree renders, on ports
// those Services have, with the scheme the workload serves.
func TestServiceMonitorsScrapeRenderedServices(t *testing.T) {
	monitors := 0
	for _, m := range renderMonitoring(t) {
		if m.GetKind() != "ServiceMonitor" {
			continue
		}
		monitors++
		sel := selectorOf(t, m)
		var services []*corev1.Service
		for _, u := range rendered {
			if u.GetKind() == "Service" && u.GetNamespace() == m.GetNamespace() && sel.Matches(labels.Set(u.GetLabels())) {
				services = append(services, typed[corev1.Service](t, u))
			}
		}
		if len(services) != 1 {
			t.Errorf("%s selects %d rendered Services in %s, want 1", Ref(m), len(services), m.GetNamespace())
			continue
		}
		endpoints, _, _ := unstructured.NestedSlice(m.Object, "spec", "endpoints")
		if len(endpoints) == 0 {
			t.Errorf("%s has no endpoints", Ref(m))
		}
		for _, e := range endpoints {
			port, _, _ := unstructured.NestedString(e.(map[string]any), "port")
			if !slices.ContainsFunc(services[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port }) {
				t.Errorf("%s scrapes port %q, which Service %s/%s does not name", Ref(m), port, services[0].Namespace, services[0].Name)
			}
		}
	}
	if monitors == 0 {
		t.Fatalf("%s renders no ServiceMonitor", monitoringTree)
	}
}

// The operator serves its metrics over HTTPS to authenticated callers
// unless --metrics-secure=false: its ServiceMonitor must match.
func TestOperatorServiceMonitorAuthenticates(t *testing.T) {
	args := podSpecOf(t, find(t, "Deployment", "outpost-system", "outpost-operator")).Containers[0].Args
	secure := true
	if v, ok := flagValue(args, "--metrics-secure"); ok {
		secure = v == "true"
	}
	want := map[bool]string{true: "https", false: "http"}[secure]
	for _, m := range renderMonitoring(t) {
		if m.GetKind() != "ServiceMonitor" || m.GetName() != "outpost-operator" {
			continue
		}
		endpoints, _, _ := unstructured.NestedSlice(m.Object, "spec", "endpoints")
		for _, e := range endpoints {
			e := e.(map[string]any)
			if scheme, _, _ := unstructured.NestedString(e, "scheme"); scheme != want {
				t.Errorf("%s scrapes with scheme %q; the operator serves %s", Ref(m), scheme, want)
			}
			token, _, _ := unstructured.NestedString(e, "bearerTokenFile")
			_, hasAuthorization := e["authorization"]
			if secure && token == "" && !hasAuthorization {
				t.Errorf("%s presents no token; the operator answers 401 without one", Ref(m))
			}
		}
		return
	}
	t.Fatalf("%s renders no ServiceMonitor outpost-operator", monitoringTree)
}

// The syncer's PodMonitor selects the syncer's Pods and scrapes the port of
// its --metrics-bind-address.
func TestSyncerPodMonitorScrapesTheMetricsPort(t *testing.T) {
	_, port, err := net.SplitHostPort(flagOr(t, syncerArgs(t, installTree), "--metrics-bind-address"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range renderMonitoring(t) {
		if m.GetKind() != "PodMonitor" {
			continue
		}
		sel := selectorOf(t, m)
		ds := find(t, "DaemonSet", m.GetNamespace(), "outpost-syncer")
		if !sel.Matches(labels.Set(podSpecTemplateLabels(t, ds))) {
			t.Errorf("%s does not select the syncer's Pods", Ref(m))
		}
		endpoints, _, _ := unstructured.NestedSlice(m.Object, "spec", "podMetricsEndpoints")
		for _, e := range endpoints {
			target := e.(map[string]any)["targetPort"]
			if strconv.Itoa(int(toInt(target))) != port {
				t.Errorf("%s scrapes port %v; the syncer serves metrics on %s", Ref(m), target, port)
			}
		}
		return
	}
	t.Fatalf("%s renders no PodMonitor", monitoringTree)
}

func flagOr(t *testing.T, args []string, name string) string {
	t.Helper()
	v, ok := flagValue(args, name)
	if !ok {
		t.Fatalf("no %s among %v", name, args)
	}
	return v
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return -1
}

func podSpecTemplateLabels(t *testing.T, u *unstructured.Unstructured) map[string]string {
	t.Helper()
	for _, w := range workloads(t) {
		if w.ref == Ref(u) {
			return w.template.Labels
		}
	}
	t.Fatalf("%s is not a workload", Ref(u))
	return nil
}

// Prometheus' binding refers to the ClusterRole the install renders, and
// the dashboard is a ConfigMap Grafana's sidecar picks up holding a
// dashboard.
func TestMonitoringReferencesAndDashboard(t *testing.T) {
	var dashboards int
	for _, u := range renderMonitoring(t) {
		switch u.GetKind() {
		case "ClusterRoleBinding":
			role, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
			if !slices.ContainsFunc(rendered, func(r *unstructured.Unstructured) bool {
				return r.GetKind() == "ClusterRole" && r.GetName() == role
			}) {
				t.Errorf("%s binds ClusterRole %s, which %s does not render", Ref(u), role, installTree)
			}
		case "ConfigMap":
			dashboards++
			if u.GetLabels()["grafana_dashboard"] == "" {
				t.Errorf("%s has no grafana_dashboard label: the Grafana sidecar ignores it", Ref(u))
			}
			data, _, _ := unstructured.NestedStringMap(u.Object, "data")
			for key, raw := range data {
				var d struct {
					Title  string
					UID    string
					Panels []json.RawMessage
				}
				if err := json.Unmarshal([]byte(raw), &d); err != nil {
					t.Errorf("%s %s: %v", Ref(u), key, err)
				} else if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
					t.Errorf("%s %s: a dashboard needs a title, a uid and panels", Ref(u), key)
				}
			}
		}
		if ns := u.GetNamespace(); ns != "" && !slices.ContainsFunc(rendered, func(r *unstructured.Unstructured) bool {
			return r.GetKind() == "Namespace" && r.GetName() == ns
		}) && ns != "kube-system" {
			t.Errorf("%s lives in namespace %s, which %s does not create", Ref(u), ns, installTree)
		}
	}
	if dashboards != 1 {
		t.Errorf("%s renders %d dashboard ConfigMaps, want 1", monitoringTree, dashboards)
	}
}
