package syncer

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func localLB(hcPort int32) *v1.Service {
	svc := service("lb", "10.96.0.9", tcpPort("http", 80), tcpPort("https", 443))
	svc.Spec.Type = v1.ServiceTypeLoadBalancer
	svc.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	svc.Spec.HealthCheckNodePort = hcPort
	return svc
}

func endpointSlice(family discovery.AddressType, eps ...discovery.Endpoint) *discovery.EndpointSlice {
	return &discovery.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("lb-%s-%d", family, len(eps)),
		Labels: map[string]string{discovery.LabelServiceName: "lb"}}, AddressType: family, Endpoints: eps}
}

func endpointOn(node, addr string, ready bool) discovery.Endpoint {
	return discovery.Endpoint{Addresses: []string{addr}, NodeName: ptr.To(node), Conditions: discovery.EndpointConditions{Ready: ptr.To(ready)}}
}

func TestHealthCheckCountsReadyLocalEndpointsByAddress(t *testing.T) {
	tr := NewChangeTracker()
	tr.SetService(localLB(32100))
	tr.SetSlice(endpointSlice(discovery.AddressTypeIPv4,
		endpointOn("node1", "10.244.1.1", true), endpointOn("node1", "10.244.1.2", true),
		endpointOn("node1", "10.244.1.3", false), endpointOn("node2", "10.244.2.1", true)))
	// The same pod in a second slice, and its IPv6 address: still one.
	tr.SetSlice(endpointSlice(discovery.AddressTypeIPv4, endpointOn("node1", "10.244.1.1", true)))
	tr.SetSlice(endpointSlice(discovery.AddressTypeIPv6, endpointOn("node1", "fd00::1", true), endpointOn("node1", "fd00::2", true), endpointOn("node1", "fd00::3", true)))

	nn := types.NamespacedName{Namespace: "default", Name: "lb"}
	for node, want := range map[string]int{"node1": 2, "node2": 1, "node3": 0} {
		got := tr.HealthChecks(node)
		if got[nn] != (HealthCheck{Port: 32100, LocalEndpoints: want}) {
			t.Errorf("%s: health checks %v, want port 32100 with %d local endpoints", node, got, want)
		}
	}

	cluster := localLB(32100)
	cluster.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
	tr.SetService(cluster)
	if got := tr.HealthChecks("node1"); len(got) != 0 {
		t.Errorf("Cluster policy Service has health checks %v; only Local ones need one", got)
	}
}

func probe(t *testing.T, h http.Handler) (int, http.Header, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	return rec.Code, rec.Header(), body
}

func TestHealthCheckAnswers200OnlyWithLocalEndpoints(t *testing.T) {
	healthy := true
	h := NewHealthServer([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, func() bool { return healthy }, logr.Discard())
	nn := types.NamespacedName{Namespace: "default", Name: "lb"}
	h.services[nn] = &healthService{port: 32100, endpoints: 2}
	code, hdr, body := probe(t, h.handler(nn))
	if code != http.StatusOK || hdr.Get("X-Load-Balancing-Endpoint-Weight") != "2" || body["localEndpoints"] != 2.0 ||
		body["serviceProxyHealthy"] != true || body["service"].(map[string]any)["name"] != "lb" {
		t.Errorf("with 2 local endpoints: %d %v %v, want 200 reporting 2", code, hdr, body)
	}
	h.services[nn].endpoints = 0
	if code, _, body := probe(t, h.handler(nn)); code != http.StatusServiceUnavailable || body["localEndpoints"] != 0.0 {
		t.Errorf("without local endpoints: %d %v, want 503", code, body)
	}
	h.services[nn].endpoints, healthy = 1, false
	if code, _, body := probe(t, h.handler(nn)); code != http.StatusServiceUnavailable || body["serviceProxyHealthy"] != false {
		t.Errorf("unhealthy syncer: %d %v, want 503", code, body)
	}
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

func TestHealthServerSyncOpensUpdatesAndClosesPorts(t *testing.T) {
	h := NewHealthServer([]netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil, logr.Discard())
	t.Cleanup(h.Close)
	nn := types.NamespacedName{Namespace: "default", Name: "lb"}
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: 2 * time.Second}
	status := func() (int, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	if err := h.Sync(map[types.NamespacedName]HealthCheck{nn: {Port: port, LocalEndpoints: 1}}); err != nil {
		t.Fatal(err)
	}
	if code, err := status(); err != nil || code != http.StatusOK {
		t.Errorf("after Sync with 1 local endpoint: %d %v, want 200", code, err)
	}
	if err := h.Sync(map[types.NamespacedName]HealthCheck{nn: {Port: port}}); err != nil {
		t.Fatal(err)
	}
	if code, err := status(); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("after Sync with no local endpoint: %d %v, want 503", code, err)
	}
	if err := h.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if code, err := status(); err == nil {
		t.Errorf("port still answers %d after its Service went away", code)
	}

	// A port in use is reported, naming the Service.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = h.Sync(map[types.NamespacedName]HealthCheck{nn: {Port: uint16(busy.Addr().(*net.TCPAddr).Port)}})
	if err == nil {
		t.Error("Sync onto a busy port reported no error")
	}
}
