package datapath

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
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

// testHealthCheckNodePort: a LoadBalancer Service with
// externalTrafficPolicy Local gets a health check node port from the API
// server; the syncer answers on it, as kube-proxy does, 200 on a node with a
// local endpoint and 503 on one without, so the load balancer sends traffic
// only where it is served locally.
func (w *world) testHealthCheckNodePort(t *testing.T) {
	local := func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
	here := w.service("hc-here", v1.ServiceTypeLoadBalancer, local, tcpPort("http", 80, 8080))
	w.slice("hc-here", "http", v1.ProtocolTCP, 8080, ep{b: w.backends[0], node: nodeName}, ep{b: w.backends[1], node: "node2"})
	elsewhere := w.service("hc-elsewhere", v1.ServiceTypeLoadBalancer, local, tcpPort("http", 80, 8080))
	w.slice("hc-elsewhere", "http", v1.ProtocolTCP, 8080, ep{b: w.backends[1], node: "node2"})

	for _, tc := range []struct {
		svc        *v1.Service
		status     int
		localCount string
	}{{here, http.StatusOK, `"localEndpoints": 1`}, {elsewhere, http.StatusServiceUnavailable, `"localEndpoints": 0`}} {
		if tc.svc.Spec.HealthCheckNodePort == 0 {
			t.Fatalf("the API server gave %s no healthCheckNodePort", tc.svc.Name)
		}
		addr := net.JoinHostPort(nodeIP, fmt.Sprint(tc.svc.Spec.HealthCheckNodePort))
		poll.Eventually(t, 20*time.Second, fmt.Sprintf("%s's health check %s answers %d", tc.svc.Name, addr, tc.status), func() error {
			status, body, err := w.httpGet(addr)
			switch {
			case err != nil:
				return err
			case status != tc.status || !strings.Contains(body, tc.localCount):
				return fmt.Errorf("got %d %q", status, body)
			}
			return nil
		})
	}
}

// httpGet sends one GET / from the client namespace. The connection is
// made inside the namespace; an http.Client would dial from another thread.
func (w *world) httpGet(addr string) (int, string, error) {
	var c net.Conn
	if err := w.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}); err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", addr); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
