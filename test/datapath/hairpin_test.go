package datapath

import (
	"net"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/test/lib/poll"
)

// testHairpin: b1 and b2, pods of this node, serve a ClusterIP Service
// that b1 calls. Landing on itself, b1 must be masqueraded (it would
// otherwise get a SYN from itself and answer it directly, not through the
// node); landing on b2, it keeps its address, as with kube-proxy.
func (w *world) testHairpin(t *testing.T) {
	b1, b2 := w.backends[0], w.backends[1]
	// As kubelet does for pod ports (--hairpin-mode hairpin-veth): the
	// packet the node sends back to b1 leaves by the bridge port it came
	// in on.
	for _, line := range strings.Split(strings.TrimSpace(w.node.Must(t, "ip", "-o", "link", "show", "master", "br0")), "\n") {
		f := strings.Fields(line) // "5: opx1123@if4: <BROADCAST,...> ..."
		port, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		w.node.Must(t, "ip", "link", "set", "dev", port, "type", "bridge_slave", "hairpin", "on")
	}
	svc := w.service("hairpin", v1.ServiceTypeClusterIP, nil, tcpPort("http", 80, 8080))
	w.slice("hairpin", "http", v1.ProtocolTCP, 8080, ep{b: b1, node: nodeName}, ep{b: b2, node: nodeName})
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	poll.Eventually(t, 20*time.Second, "b1 reaches its own Service", func() error {
		_, err := w.getFrom(b1.NS, addr)
		return err
	})
	want := map[string]string{"b1": bridgeIP, "b2": b1.IP}
	seen := map[string]int{}
	// Each connection lands on b1 with probability 1/2: 40 tries miss
	// one of them with probability 2^-39.
	for range 40 {
		r, err := w.getFrom(b1.NS, addr)
		if err != nil {
			t.Fatalf("b1 calling its Service: %v (seen so far %v)", err, seen)
		}
		if r.from != want[r.backend] {
			t.Fatalf("%s saw the caller b1 as %s, want %s", r.backend, r.from, want[r.backend])
		}
		seen[r.backend]++
	}
	if seen["b1"] == 0 || seen["b2"] == 0 {
		t.Errorf("b1's calls landed on %v: want both endpoints", seen)
	}
}
