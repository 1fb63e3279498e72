package dns

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// TestAPIOutageAndSnapshot cuts CoreDNS off from the API server (a loopback
// proxy in front of it closes its listener and every connection) and checks:
// answers keep coming while it is away, changes made meanwhile show up when it
// returns, and a CoreDNS restarted while it is away answers from the snapshot
// and switches to live data once it is back.
func TestAPIOutageAndSnapshot(t *testing.T) {
	ns := namespace(t, "outage", nil)
	proxy := startAPIProxy(t)
	snapshot := filepath.Join(t.TempDir(), "outpost.snapshot")
	p := loopback.FreePort(t)
	corefile := outpostCorefile(p, startUpstream(t), testenv.AdminKubeconfigFile(t, env, "coredns-test", proxy.addr), "snapshot "+snapshot+" 500ms")
	name := func(s string) string { return s + ".outage.svc.cluster.local." }
	answers := func(t *testing.T, svc string, ip string) func() error {
		return func() error {
			r := query(t, "udp", p, name(svc), dns.TypeA)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != ip {
				return fmt.Errorf("%s: want A %s, got\n%s", svc, ip, r)
			}
			return nil
		}
	}
	nxdomain := func(t *testing.T, svc string) func() error {
		return func() error {
			r := query(t, "udp", p, name(svc), dns.TypeA)
			if r.Rcode != dns.RcodeNameError {
				return fmt.Errorf("%s: want NXDOMAIN, got\n%s", svc, r)
			}
			return nil
		}
	}

	before := createService(t, clusterIPService(ns, "before", false, port("http", 80)))
	srv := startCoreDNS(t, corefile, p)
	poll.Eventually(t, 10*time.Second, "before answered", answers(t, "before", before.Spec.ClusterIP))
	poll.Eventually(t, 10*time.Second, "the snapshot written", func() error {
		_, err := os.Stat(snapshot)
		return err
	})

	t.Run("API away while running", func(t *testing.T) {
		proxy.cut()
		during := createService(t, clusterIPService(ns, "during", false, port("http", 80)))
		for range 20 { // answers keep coming from the cache
			if err := answers(t, "before", before.Spec.ClusterIP)(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		checkCase(t, "udp", p, test.Case{Qname: name("during"), Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}})
		proxy.restore(t)
		poll.Eventually(t, 60*time.Second, "during answered once the API is back", answers(t, "during", during.Spec.ClusterIP))
	})

	t.Run("restart while API away", func(t *testing.T) {
		srv.Stop() // writes the snapshot on shutdown
		proxy.cut()
		startCoreDNS(t, corefile, p)
		poll.Eventually(t, 5*time.Second, "before answered from the snapshot", answers(t, "before", before.Spec.ClusterIP))
		during, err := kube.CoreV1().Services(ns).Get(context.Background(), "during", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := answers(t, "during", during.Spec.ClusterIP)(); err != nil {
			t.Fatalf("from the snapshot: %v", err)
		}
		// The snapshot counts as synced data: missing names are NXDOMAIN.
		checkCase(t, "tcp", p, test.Case{Qname: name("nosuch"), Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa("cluster.local.")}})

		// Change the API while CoreDNS cannot see it, then let it back in.
		if err := kube.CoreV1().Services(ns).Delete(context.Background(), "before", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		after := createService(t, clusterIPService(ns, "after", false, port("http", 80)))
		proxy.restore(t)
		poll.Eventually(t, 60*time.Second, "after answered once the API is back", answers(t, "after", after.Spec.ClusterIP))
		poll.Eventually(t, 10*time.Second, "before deleted while the API was away is NXDOMAIN", nxdomain(t, "before"))
	})
}
