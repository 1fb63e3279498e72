package datapath

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/process"
)

// TestLocalhostNodePorts runs the syncer as kube-proxy runs by default (no
// --node-ip, localhost node ports on): a process on the node reaches node
// ports on 127.0.0.1, for an externalTrafficPolicy: Local Service without a
// local endpoint too (traffic from the node goes to any endpoint), and the
// syncer turned route_localnet on in the node's namespace for it.
func TestLocalhostNodePorts(t *testing.T) {
	w := setup(t)
	b1, b2 := w.backends[0], w.backends[1]

	web := w.service("web", v1.ServiceTypeNodePort, nil, tcpPort("http", 80, 8080))
	w.slice("web", "http", v1.ProtocolTCP, 8080, ep{b: b1, node: nodeName})
	remote := w.service("remote", v1.ServiceTypeNodePort, func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}, tcpPort("http", 80, 8080))
	w.slice("remote", "http", v1.ProtocolTCP, 8080, ep{b: b2, node: "node2"})

	process.StartForTest(t, "syncer", syncerBin,
		"--kubeconfig", w.kubeconfig, "--node-name", nodeName, "--cluster-cidr", clusterCID, "--netns", w.node.Name,
		"--service-selector", "app.kubernetes.io/managed-by=outpost-operator",
		"--min-sync-period", "100ms", "--metrics-bind-address", "0", "--healthz-bind-address", "0")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node iptables:\n%s", w.node.Must(t, "iptables-save"))
		}
	})
	localhost := func(s *v1.Service) string { return net.JoinHostPort("127.0.0.1", fmt.Sprint(s.Spec.Ports[0].NodePort)) }

	poll.Eventually(t, 30*time.Second, "the node reaches web's node port on 127.0.0.1", func() error {
		r, err := w.getFrom(w.node, localhost(web))
		if err == nil && r.backend != "b1" {
			err = fmt.Errorf("answered by %s, want b1", r.backend)
		}
		return err
	})
	if got := strings.TrimSpace(w.node.Must(t, "cat", "/proc/sys/net/ipv4/conf/all/route_localnet")); got != "1" {
		t.Errorf("route_localnet in the node's namespace is %q, want 1 (the syncer sets it for localhost node ports)", got)
	}
	r, err := w.getFrom(w.node, localhost(remote))
	if err != nil || r.backend != "b2" {
		t.Errorf("node to 127.0.0.1 node port of a Local Service whose only endpoint is on another node: %+v, %v; want b2, as kube-proxy sends the node's own traffic to any endpoint", r, err)
	}
	// Masqueraded: b1 cannot answer 127.0.0.1, so its answer proves it.
	if r, err := w.getFrom(w.node, localhost(web)); err != nil || r.from != bridgeIP {
		t.Errorf("b1 saw the node's call to 127.0.0.1 as %+v (%v), want the node's bridge address %s", r, err, bridgeIP)
	}
}
