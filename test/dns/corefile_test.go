package dns

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// TestCorefileExample starts bin/coredns with the repository's
// Corefile.example, changed only where a test must (exampleCorefile).
func TestCorefileExample(t *testing.T) {
	ns := namespace(t, "example", nil)
	web := createService(t, clusterIPService(ns, "web", false, port("http", 80)))

	ex := exampleCorefile(t, "outpost", true)
	dnsPort, healthPort, readyPort, metricsPort := ex.dns, ex.health, ex.ready, ex.metrics
	startCoreDNS(t, ex.corefile, dnsPort)

	checkCase(t, "udp", dnsPort, test.Case{Qname: "web.example.svc.cluster.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("web.example.svc.cluster.local. 30 IN A " + web.Spec.ClusterIP)}})
	checkCase(t, "tcp", dnsPort, test.Case{Qname: "nosuch.example.svc.cluster.local.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
		Ns: []dns.RR{test.SOA("cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30")}})
	// Names outside the cluster go to forward.
	checkCase(t, "udp", dnsPort, test.Case{Qname: "www.example.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("www.example. 303 IN A 203.0.113.7")}}) // TTL capped by cache: not checked
	// Reverse lookups outside the cluster fall through to forward: the
	// upstream's (non-authoritative) NXDOMAIN, not outpost's.
	ptr := query(t, "udp", dnsPort, "7.113.0.203.in-addr.arpa.", dns.TypePTR)
	if ptr.Rcode != dns.RcodeNameError || ptr.Authoritative {
		t.Errorf("PTR outside the cluster: rcode %s aa=%v, want the upstream's NXDOMAIN", dns.RcodeToString[ptr.Rcode], ptr.Authoritative)
	}
	checkCase(t, "udp", dnsPort, test.Case{Qname: reverse(web.Spec.ClusterIP), Qtype: dns.TypePTR,
		Answer: []dns.RR{test.PTR(reverse(web.Spec.ClusterIP) + " 30 IN PTR web.example.svc.cluster.local.")}})

	for _, u := range []string{
		fmt.Sprintf("http://127.0.0.1:%d/health", healthPort),
		fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort),
	} {
		if code, _ := get(t, u); code != http.StatusOK {
			t.Errorf("GET %s: %d", u, code)
		}
	}
	_, metrics := get(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	for _, want := range []string{`coredns_outpost_requests_total{result="success"}`, `coredns_outpost_synced 1`, `coredns_outpost_objects{kind="service"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// example is Corefile.example made runnable here, with the loopback ports it
// serves on.
type example struct {
	corefile                    string
	dns, health, ready, metrics int
}

// exampleCorefile returns the repository's Corefile.example changed only
// where a test must: loopback ports, a loopback upstream for forward, the
// kubeconfig; plugin ("outpost" or "kubernetes") on the plugin line, and
// without its cache line unless cache. The benchmark runs both plugins in
// this shape, the one users run.
func exampleCorefile(t testing.TB, plugin string, cache bool) example {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Corefile.example"))
	if err != nil {
		t.Fatal(err)
	}
	ex := example{dns: loopback.FreePort(t), health: loopback.FreePort(t), ready: loopback.FreePort(t), metrics: loopback.FreePort(t)}
	replacements := []struct{ old, new string }{
		{".:53 {", fmt.Sprintf(".:%d {\n    bind 127.0.0.1", ex.dns)},
		{"health :8080", fmt.Sprintf("health 127.0.0.1:%d", ex.health)},
		{"ready :8181", fmt.Sprintf("ready 127.0.0.1:%d", ex.ready)},
		{"prometheus :9153", fmt.Sprintf("prometheus 127.0.0.1:%d", ex.metrics)},
		{"forward . /etc/resolv.conf", fmt.Sprintf("forward . 127.0.0.1:%d", startUpstream(t))},
		{"fallthrough in-addr.arpa ip6.arpa", "fallthrough in-addr.arpa ip6.arpa\n        kubeconfig " + testenv.AdminKubeconfigFile(t, env, "coredns-test", "")},
		{"    outpost cluster.local", "    " + plugin + " cluster.local"},
	}
	if !cache {
		replacements = append(replacements, struct{ old, new string }{"    cache 30\n", ""})
	}
	ex.corefile = string(data)
	for _, r := range replacements {
		if strings.Count(ex.corefile, r.old) != 1 {
			t.Fatalf("Corefile.example no longer has exactly one %q; update exampleCorefile", r.old)
		}
		ex.corefile = strings.Replace(ex.corefile, r.old, r.new, 1)
	}
	return ex
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestPluginList checks that bin/coredns lists outpost next to the stock
// plugins (CoreDNS v1.15 prints names without the "dns." server-type prefix).
func TestPluginList(t *testing.T) {
	out, err := exec.Command(coredns, "-plugins").Output()
	if err != nil {
		t.Fatal(err)
	}
	plugins := strings.Fields(string(out))
	for _, want := range []string{"outpost", "kubernetes", "forward", "cache", "k8s_external", "whoami"} {
		if !slices.Contains(plugins, want) {
			t.Errorf("coredns -plugins lacks %s:\n%s", want, out)
		}
	}
}

// TestOutpostRunsBeforeKubernetes puts both plugins in one server block:
// outpost (ttl 7) must answer Services, and fall through to kubernetes
// (ttl 9, pods insecure) for what it does not serve.
func TestOutpostRunsBeforeKubernetes(t *testing.T) {
	ns := namespace(t, "order", nil)
	web := createService(t, clusterIPService(ns, "web", false, port("http", 80)))
	kc := testenv.AdminKubeconfigFile(t, env, "coredns-test", "")
	p := loopback.FreePort(t)
	startCoreDNS(t, fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    kubernetes cluster.local {
        kubeconfig %s
        pods insecure
        ttl 9
    }
    outpost cluster.local {
        kubeconfig %s
        ttl 7
        fallthrough
    }
}
`, p, kc, kc), p)
	checkCase(t, "udp", p, test.Case{Qname: "web.order.svc.cluster.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("web.order.svc.cluster.local. 7 IN A " + web.Spec.ClusterIP)}})
	checkCase(t, "udp", p, test.Case{Qname: "198-51-100-9.order.pod.cluster.local.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("198-51-100-9.order.pod.cluster.local. 9 IN A 198.51.100.9")}})
}
