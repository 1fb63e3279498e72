package datapath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/test/lib/netns"
	"github.com/outpost-dev/outpost/test/lib/poll"
)

// A second client on its own link to the node, outside the source ranges
// the load balancer below admits.
const (
	outsiderIP     = "192.0.2.2"
	outsiderNodeIP = "192.0.2.1"
	// lbIngressIP is routed to the node by both clients (their default
	// route); it is no one's address, as with a VIP-style load balancer
	// that delivers to the node without being bound there.
	lbIngressIP = "198.18.0.10"
)

// addOutsider links a second client namespace to the node.
func (w *world) addOutsider(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.New(t, "op-outsider")
	short := fmt.Sprint(os.Getpid() % 100000)
	inner, outer := "opo"+short, "opp"+short
	netns.Must(t, "ip", "link", "add", inner, "netns", ns.Name, "type", "veth", "peer", "name", outer, "netns", w.node.Name)
	ns.Must(t, "ip", "addr", "add", outsiderIP+"/24", "dev", inner)
	ns.Must(t, "ip", "link", "set", inner, "up")
	ns.Must(t, "ip", "route", "add", "default", "via", outsiderNodeIP)
	w.node.Must(t, "ip", "addr", "add", outsiderNodeIP+"/24", "dev", outer)
	w.node.Must(t, "ip", "link", "set", outer, "up")
	return ns
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// testLoadBalancerSourceRanges: a LoadBalancer Service admitting only the
// client's /32 on its ingress IP. The client gets through; the outsider's
// SYNs are dropped (its dial times out, nothing refuses it) until its
// range is added.
func (w *world) testLoadBalancerSourceRanges(t *testing.T) {
	outsider := w.addOutsider(t)
	ctx := context.Background()
	svc := w.service("lb-ranges", v1.ServiceTypeLoadBalancer, func(s *v1.Service) {
		s.Spec.LoadBalancerSourceRanges = []string{clientIP + "/32"}
	}, tcpPort("http", 80, 8080))
	svc.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lbIngressIP}}
	svc, err := w.kube.CoreV1().Services("default").UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("set load-balancer ingress: %v", err)
	}
	w.slice("lb-ranges", "http", v1.ProtocolTCP, 8080, ep{b: w.backends[0]})
	lb := net.JoinHostPort(lbIngressIP, "80")

	poll.Eventually(t, 20*time.Second, "client inside the source range reaches the load-balancer IP", func() error {
		r, err := w.getFrom(w.client, lb)
		if err == nil && r.backend != "b1" {
			return fmt.Errorf("answered by %s, want b1", r.backend)
		}
		return err
	})
	// The Service is programmed (the client got through): the outsider's
	// connection must be dropped, not refused or unreachable.
	for range 2 {
		if r, err := w.getFrom(outsider, lb); !isTimeout(err) {
			t.Fatalf("outsider %s -> %s: got %+v, %v; want a timeout (dropped by the firewall)", outsiderIP, lb, r, err)
		}
	}

	// Admitting the outsider's range opens the way: the drop was the
	// firewall, not the path.
	svc.Spec.LoadBalancerSourceRanges = append(svc.Spec.LoadBalancerSourceRanges, "192.0.2.0/24")
	if _, err := w.kube.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll.Eventually(t, 20*time.Second, "outsider reaches the load-balancer IP once its range is admitted", func() error {
		_, err := w.getFrom(outsider, lb)
		return err
	})
}
