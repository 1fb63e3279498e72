package render_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

// bigWorld has n services with a node port each and two endpoints on
// other nodes.
func bigWorld(n int) *world {
	w := &world{}
	remote := func(addr string) render.Endpoint {
		e := ep(addr, 8080)
		e.NodeName = "node-b"
		return e
	}
	for i := 0; i < n; i++ {
		sp := tcp("ns", fmt.Sprintf("svc%d", i), "p", fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), 80)
		sp.NodePort, sp.ExternallyAccessible = 30000+i, true
		w.add(sp, remote(fmt.Sprintf("10.244.%d.%d", i/250, i%250+1)), remote(fmt.Sprintf("10.245.%d.%d", i/250, i%250+1)))
	}
	return w
}

func TestDispatchTrieReachesEveryServiceInFewRules(t *testing.T) {
	const n = 2000
	w := bigWorld(n)
	compact := tracer(t, baseConfig("OUTPOST", render.Compact), w)
	flat := tracer(t, baseConfig("KUBE", render.KubeProxy), w)
	var compactRules, flatRules int
	for i := 0; i < n; i += 7 {
		sp := &w.services[i]
		want := []string{fmt.Sprintf("10.244.%d.%d:8080", i/250, i%250+1), fmt.Sprintf("10.245.%d.%d:8080", i/250, i%250+1)}
		c := compact.Trace(pkt(podSrc, sp.ClusterIP, "tcp", 80))
		wantEndpoints(t, c, want...)
		wantEndpoints(t, compact.Trace(pkt(outsideSrc, nodeIP, "tcp", sp.NodePort)), want...)
		f := flat.Trace(pkt(podSrc, sp.ClusterIP, "tcp", 80))
		wantEndpoints(t, f, want...)
		compactRules += c.Rules
		flatRules += f.Rules
	}
	if compactRules*20 > flatRules {
		t.Errorf("compact dispatch evaluates %d rules, kube-proxy layout %d: want at most 1/20", compactRules, flatRules)
	}
	// An address that is no service falls through quickly too.
	if res := compact.Trace(pkt(podSrc, netip.MustParseAddr("10.96.200.1"), "tcp", 80)); res.Rules > 40 {
		t.Errorf("miss walked %d rules", res.Rules)
	}
}

func TestOneEndpointChangeRewritesOnlyItsChain(t *testing.T) {
	w := bigWorld(1000)
	r, err := render.NewRenderer(baseConfig("OUTPOST", render.Compact))
	if err != nil {
		t.Fatal(err)
	}
	before := r.Render(w.services, w.endpoints)
	key := render.EndpointsKey(&w.services[500])
	w.endpoints[key] = w.endpoints[key][:1]
	after := r.Render(w.services, w.endpoints)
	tx := after.Diff(before)
	want := rules.ChainRef{Table: rules.NAT, Name: r.Names().ServiceChain(w.services[500].Key(), "tcp")}
	if got := tx.Written(); len(got) != 1 || got[0] != want || len(tx.Deleted()) != 0 {
		t.Errorf("one-endpoint change wrote %v, deleted %v; want only %v", got, tx.Deleted(), want)
	}

	// Removing a service deletes its chains and rewrites only its buckets.
	w.services = append(w.services[:500:500], w.services[501:]...)
	removed := r.Render(w.services, w.endpoints)
	tx = removed.Diff(after)
	deleted := map[string]bool{}
	for _, ref := range tx.Deleted() {
		deleted[ref.Name] = true
	}
	svc500 := r.Names().ServiceChain("ns/svc500:p", "tcp")
	ext500 := r.Names().ExternalChain("ns/svc500:p", "tcp")
	if !deleted[svc500] || !deleted[ext500] {
		t.Errorf("deleted %v, want the service's SVC and EXT chains", tx.Deleted())
	}
	// Besides its own chains, only the dispatch buckets on its path change.
	if n := len(tx.Written()) + len(tx.Deleted()) - 2; n > 6 {
		t.Errorf("removing one service touched %d other chains: wrote %v, deleted %v", n, tx.Written(), tx.Deleted())
	}

}
