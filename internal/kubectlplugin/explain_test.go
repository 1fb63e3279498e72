package kubectlplugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/internal/kubectlplugin"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/test/lib/dnsserver"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// TestExplain writes svc1 of the user stories as the operator would have
// (the ExternalBackend with its status, the Service, an EndpointSlice with
// one machine down), lets a test DNS server answer for the Service's name
// and a syncer print its rules, and reads the one screen explain shows.
func TestExplain(t *testing.T) {
	const ns = "explain"
	ctx := context.Background()
	namespace(t, ns)

	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "svc1"},
		Spec: v1alpha1.ExternalBackendSpec{
			Addresses: []string{"192.168.1.2", "db.example.org"},
			Ports: []v1alpha1.BackendPort{
				{Name: "port7064", Port: 7064, TargetPort: 31496},
				{Name: "port7164", Port: 7164, TargetPort: 31337},
			},
		},
	}
	create(t, xb)
	expires := metav1.NewTime(time.Now().Add(30*time.Hour + 30*time.Minute))
	xb.Status = v1alpha1.ExternalBackendStatus{
		Mode: v1alpha1.ModeResolved, ServiceName: "svc1", ObservedGeneration: xb.Generation,
		Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonEndpointsReady,
			Message: "1 of 2 endpoints ready", LastTransitionTime: metav1.Now(),
		}},
		Endpoints: []v1alpha1.EndpointStatus{
			{Address: "192.168.1.2", Ready: true},
			{Address: "192.168.1.3", Host: "db.example.org", Ready: false, Expires: &expires, Reason: v1alpha1.EndpointUnhealthy, Message: "connection refused"},
		},
		ReadyEndpoints: 1, TotalEndpoints: 2, Ready: "1/2",
	}
	if err := k8s.Status().Update(ctx, xb); err != nil {
		t.Fatal(err)
	}
	svc := selectorless(ns, "svc1", port("port7064", 7064, 31496), port("port7164", 7164, 31337))
	svc.Labels = map[string]string{desired.LabelManagedBy: desired.ManagedBy}
	create(t, svc,
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: "svc1-ipv4", Labels: desired.SliceLabels("svc1")},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"192.168.1.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
				{Addresses: []string{"192.168.1.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			},
			Ports: []discoveryv1.EndpointPort{
				{Name: ptr.To("port7064"), Port: ptr.To[int32](31496), Protocol: ptr.To(corev1.ProtocolTCP)},
				{Name: ptr.To("port7164"), Port: ptr.To[int32](31337), Protocol: ptr.To(corev1.ProtocolTCP)},
			},
		})
	clusterIP := svc.Spec.ClusterIP // allocated by the API server

	dns := dnsserver.Start(t)
	dns.SetA("svc1.explain.svc.cluster.local", 30, clusterIP)
	rules := syncerRules(t)

	out, stderr, err := kubectlOutpost(t, "explain", "svc1", "-n", ns, "--dns-server", dns.Addr, "--rules", rules)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, stderr)
	}
	screen := words(out)
	for _, want := range []string{
		"ExternalBackend explain/svc1 mode=Resolved ready=1/2",
		"Ready True EndpointsReady 1 of 2 endpoints ready",
		"192.168.1.2 true - - - -",
		"192.168.1.3 false Unhealthy db.example.org in 30h connection refused",
		"svc1 type=ClusterIP " + clusterIP + " sessionAffinity=None",
		"7064 port7064 TCP 31496 -",
		"svc1-ipv4 IPv4 ports port7064:31496/TCP port7164:31337/TCP",
		"192.168.1.3 false - -",
		"svc1.explain.svc.cluster.local. A " + clusterIP,
		"svc1.explain.svc.cluster.local. AAAA no records",
		"_port7064._tcp.svc1.explain.svc.cluster.local. SRV error: NXDOMAIN",
		"10.244.0.10 " + clusterIP + ":7064/tcp DNAT 192.168.1.2:31496",
		"10.244.0.10 " + clusterIP + ":7164/tcp DNAT 192.168.1.2:31337",
	} {
		if !slices.ContainsFunc(screen, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("the screen has no line starting %q:\n%s", want, out)
		}
	}

	// -o json holds the same facts for scripts.
	out, stderr, err = kubectlOutpost(t, "explain", "svc1", "-n", ns, "--dns-server", dns.Addr, "--rules", rules, "-o", "json")
	if err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, stderr)
	}
	var e kubectlplugin.Explanation
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("explain -o json: %v\n%s", err, out)
	}
	if len(e.Traces) != 2 || !reflect.DeepEqual(e.Traces[0].Endpoints, []string{"192.168.1.2:31496"}) {
		t.Errorf("explain -o json traces = %+v, want 7064 to reach 192.168.1.2:31496 only", e.Traces)
	}

	if _, _, err := kubectlOutpost(t, "explain", "nosuch", "-n", ns, "--dns-server", dns.Addr); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("explain of a missing ExternalBackend: error %v, want not found", err)
	}
}

// syncerRules runs `outpost-syncer --once --dry-run` against the test API
// server and returns the file holding the rules it printed.
func syncerRules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "outpost-syncer")
	if err := testenv.Build(bin, "./operator/cmd/outpost-syncer"); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "--kubeconfig", kubeconfig, "--once", "--dry-run", "--node-name", "node1",
		"--cluster-cidr", "10.244.0.0/16", "--metrics-bind-address", "0",
		"--service-selector", desired.LabelManagedBy+"="+desired.ManagedBy)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("outpost-syncer --once --dry-run: %v\n%s", err, stderr.String())
	}
	path := filepath.Join(dir, "rules")
	if err := os.WriteFile(path, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// words is each line of out with its columns separated by one space, so
// tests do not depend on column widths.
func words(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return lines
}
