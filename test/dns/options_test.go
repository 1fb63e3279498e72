package dns

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// TestOptions runs one CoreDNS with a server block per option, all reading
// the same API objects, and checks what each option changes.
func TestOptions(t *testing.T) {
	a, b := namespace(t, "opt-a", nil), namespace(t, "opt-b", nil)
	team := map[string]string{"team": "dns"}
	labelled := func(svc interface{ GetObjectMeta() metav1.Object }) {
		svc.GetObjectMeta().SetLabels(team)
	}
	webA := clusterIPService(a, "web", false, port("http", 80))
	labelled(webA)
	webA = createService(t, webA)
	webB := clusterIPService(b, "web", false, port("http", 80))
	labelled(webB)
	createService(t, webB)
	lonely := createService(t, clusterIPService(a, "lonely", false, port("http", 80)))
	hl := headlessService(a, "hl", port("http", 80))
	labelled(hl)
	createService(t, hl)
	// Slices carry the Service's labels (the labels block selects both).
	createSliceWithLabels(t, a, "web", "web-a", team, endpoint{ip: "198.51.100.20"})
	createSliceWithLabels(t, a, "hl", "hl-a", team, endpoint{ip: "198.51.100.21"})

	upstream := startUpstream(t)
	kc := testenv.AdminKubeconfigFile(t, env, "coredns-test", "")
	ports := map[string]int{}
	var corefile strings.Builder
	for _, opt := range []struct{ name, block string }{
		{"namespaces", "namespaces opt-a"},
		{"labels", "labels team=dns"},
		{"ttl+noendpoints", "ttl 60\n        noendpoints"},
		{"ignore", "ignore empty_service"},
		{"fallthrough", "fallthrough"},
		{"podnames", "endpoint_pod_names"},
	} {
		ports[opt.name] = loopback.FreePort(t)
		corefile.WriteString(outpostCorefile(ports[opt.name], upstream, kc, opt.block))
	}
	startCoreDNS(t, corefile.String(), ports["fallthrough"])

	name := func(s, ns string) string { return s + "." + ns + ".svc.cluster.local." }
	nx := func(port int, qname string) {
		t.Helper()
		zoneSOA := soa("cluster.local.")
		if port == ports["ttl+noendpoints"] {
			zoneSOA.Header().Ttl = 60
		}
		checkCase(t, "udp", port, test.Case{Qname: qname, Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{zoneSOA}})
	}
	ok := func(port int, qname string, ttl int, ip string) {
		t.Helper()
		checkCase(t, "udp", port, test.Case{Qname: qname, Qtype: dns.TypeA, Answer: []dns.RR{test.A(fmt.Sprintf("%s %d IN A %s", qname, ttl, ip))}})
	}

	t.Run("namespaces", func(t *testing.T) {
		p := ports["namespaces"]
		ok(p, name("web", a), 5, webA.Spec.ClusterIP)
		nx(p, name("web", b))
		nx(p, b+".svc.cluster.local.")
	})
	t.Run("labels", func(t *testing.T) {
		p := ports["labels"]
		ok(p, name("web", a), 5, webA.Spec.ClusterIP)
		nx(p, name("lonely", a))
		ok(p, name("hl", a), 5, "198.51.100.21")
	})
	t.Run("ttl and noendpoints", func(t *testing.T) {
		p := ports["ttl+noendpoints"]
		ok(p, name("web", a), 60, webA.Spec.ClusterIP)
		nx(p, name("hl", a))
		nx(p, "198-51-100-20."+name("web", a))
	})
	t.Run("ignore empty_service", func(t *testing.T) {
		p := ports["ignore"]
		nx(p, name("lonely", a))
		ok(p, name("web", a), 5, webA.Spec.ClusterIP)
		ok(p, name("hl", a), 5, "198.51.100.21")
		// Without the option the empty Service answers.
		ok(ports["namespaces"], name("lonely", a), 5, lonely.Spec.ClusterIP)
	})
	t.Run("fallthrough", func(t *testing.T) {
		p := ports["fallthrough"]
		ok(p, name("nosuch", a), 60, fallthroughIP) // answered by the next plugin
		ok(p, name("web", a), 5, webA.Spec.ClusterIP)
		nx(ports["namespaces"], name("nosuch", a)) // without fallthrough: NXDOMAIN
	})
	t.Run("endpoint_pod_names", func(t *testing.T) {
		createSliceWithLabels(t, a, "hl", "hl-pods", nil, endpoint{ip: "198.51.100.22", pod: "hl-pod-0"})
		poll.Eventually(t, 10*time.Second, "hl-pod-0 answered under its pod name", func() error {
			r := query(t, "udp", ports["podnames"], "hl-pod-0."+name("hl", a), dns.TypeA)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				return fmt.Errorf("hl-pod-0 not answered yet: %s", r)
			}
			return nil
		})
		nx(ports["namespaces"], "hl-pod-0."+name("hl", a))
		ok(ports["namespaces"], "198-51-100-22."+name("hl", a), 5, "198.51.100.22")
	})
}

func createSliceWithLabels(t testing.TB, ns, service, name string, labels map[string]string, eps ...endpoint) *discovery.EndpointSlice {
	t.Helper()
	es := createSlice(t, ns, service, name, discovery.AddressTypeIPv4, []discovery.EndpointPort{slicePort("http", 80)}, eps...)
	if labels != nil {
		es = labelSlice(t, ns, name, labels)
	}
	return es
}

func labelSlice(t testing.TB, ns, name string, labels map[string]string) *discovery.EndpointSlice {
	t.Helper()
	es, err := kube.DiscoveryV1().EndpointSlices(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range labels {
		es.Labels[k] = v
	}
	es, err = kube.DiscoveryV1().EndpointSlices(ns).Update(t.Context(), es, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestSERVFAILBeforeSync starts CoreDNS against an API server that does not
// answer: missing names must be SERVFAIL (never NXDOMAIN) and the ready
// plugin must report not ready.
func TestSERVFAILBeforeSync(t *testing.T) {
	dead := loopback.FreePort(t) // nothing listens here
	p, readyPort := loopback.FreePort(t), loopback.FreePort(t)
	corefile := fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    ready 127.0.0.1:%d
    outpost cluster.local {
        kubeconfig %s
        startup_timeout 500ms
    }
}
`, p, readyPort, testenv.AdminKubeconfigFile(t, env, "coredns-test", fmt.Sprintf("127.0.0.1:%d", dead)))
	startCoreDNS(t, corefile, p)
	for _, proto := range []string{"udp", "tcp"} {
		checkCase(t, proto, p, test.Case{Qname: "web.default.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeServerFailure, Ns: []dns.RR{soa("cluster.local.")}})
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("ready plugin says ready before the API synced")
	}
}
