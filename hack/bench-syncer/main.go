// Command bench-syncer measures outpost-syncer side by side with
// kube-proxy's own iptables proxier (k8s.io/kubernetes/pkg/proxy/iptables
// v1.37.2 driven with a capturing fake iptables) on the same Services and
// EndpointSlices: render time, restore input size for a full sync and for
// a one-endpoint change, real iptables-restore time in a fresh network
// namespace, nat rules, and rules a first packet walks (traced with the
// same tracer on both rule sets).
//
// Run it with `make bench-syncer` (needs root for the real restores).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	sysctltest "k8s.io/component-helpers/node/util/sysctl/testing"
	kpconfig "k8s.io/kubernetes/pkg/proxy/apis/config"
	kpiptables "k8s.io/kubernetes/pkg/proxy/iptables"
	proxyutil "k8s.io/kubernetes/pkg/proxy/util"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	kpiptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
	"k8s.io/utils/ptr"

	"github.com/outpost-dev/outpost/internal/benchresult"
	"github.com/outpost-dev/outpost/internal/listflag"
	"github.com/outpost-dev/outpost/operator/syncer"
	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

const (
	nodeName    = "node0"
	clusterCIDR = "10.0.0.0/8"
)

// world is the same API objects for both proxies.
type world struct {
	services []*v1.Service
	slices   []*discovery.EndpointSlice
}

// gen makes n ClusterIP services (random addresses in 10.96.0.0/16, as the
// API server allocates them) with eps ready endpoints each on 100 nodes.
func gen(n, eps int) *world {
	rng := rand.New(rand.NewPCG(1, 2))
	perm := rng.Perm(65534)
	w := &world{}
	next := netip.MustParseAddr("10.128.0.0")
	for i := 0; i < n; i++ {
		host := perm[i] + 1
		ip := fmt.Sprintf("10.96.%d.%d", host/256, host%256)
		name := fmt.Sprintf("svc%05d", i)
		w.services = append(w.services, &v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec: v1.ServiceSpec{Type: v1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
				Ports: []v1.ServicePort{{Name: "p80", Port: 80, Protocol: v1.ProtocolTCP}}},
		})
		s := &discovery.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "bench", Name: name + "-1", Labels: map[string]string{discovery.LabelServiceName: name}},
			AddressType: discovery.AddressTypeIPv4,
			Ports:       []discovery.EndpointPort{{Name: ptr.To("p80"), Port: ptr.To[int32](8080), Protocol: ptr.To(v1.ProtocolTCP)}},
		}
		for j := 0; j < eps; j++ {
			next = next.Next()
			s.Endpoints = append(s.Endpoints, discovery.Endpoint{
				Addresses:  []string{next.String()},
				Conditions: discovery.EndpointConditions{Ready: ptr.To(true)},
				NodeName:   ptr.To(fmt.Sprintf("node%d", (i*eps+j)%100)),
			})
		}
		w.slices = append(w.slices, s)
	}
	return w
}

// changed returns slice k without its last endpoint.
func (w *world) changed(k int) *discovery.EndpointSlice {
	s := w.slices[k].DeepCopy()
	s.Endpoints = s.Endpoints[:len(s.Endpoints)-1]
	return s
}

// result is one proxy's figures at one size.
type result struct {
	renderFull, renderPartial time.Duration
	full, partial             []byte
	natRules                  int
	firstPacket               float64
	restoreFull               time.Duration
	restorePartial            time.Duration
}

// capture is a restore.Runner that only keeps the input.
type capture struct{ last []byte }

func (c *capture) Restore(_ context.Context, _ bool, in []byte) error {
	c.last = append(c.last[:0], in...)
	return nil
}
func (c *capture) Chains(context.Context, bool, rules.Table) ([]string, error) { return nil, nil }
func (c *capture) ChainExists(context.Context, bool, rules.Table, string) (bool, error) {
	return true, nil
}
func (c *capture) EnsureJump(context.Context, bool, rules.Jump) error { return nil }
func (c *capture) HasJump(context.Context, bool, rules.Jump) (bool, error) {
	return true, nil
}

// outpost runs one first full sync and one partial sync after slice k lost
// an endpoint.
func outpost(w *world, k int, layout render.Layout, prefix string) (*result, error) {
	ctx := context.Background()
	res := &result{}
	tr := syncer.NewChangeTracker()
	for _, s := range w.services {
		tr.SetService(s)
	}
	for _, s := range w.slices {
		tr.SetSlice(s)
	}
	cap := &capture{}
	s, err := syncer.New(tr, cap, syncer.Options{Log: logr.Discard(), Families: []render.Config{{
		Prefix: prefix, Layout: layout, NodeName: nodeName, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix(clusterCIDR)},
	}}})
	if err != nil {
		return nil, err
	}
	runtime.GC()
	start := time.Now()
	if err := s.Sync(ctx, true); err != nil {
		return nil, err
	}
	res.renderFull = time.Since(start)
	res.full = bytes.Clone(cap.last)
	tr.SetSlice(w.changed(k))
	start = time.Now()
	if err := s.Sync(ctx, false); err != nil {
		return nil, err
	}
	res.renderPartial = time.Since(start)
	res.partial = bytes.Clone(cap.last)
	return res, nil
}

// kubeIPT is kube-proxy's fake iptables, keeping the restore input only
// (its own parsing of the input would count against kube-proxy's time).
type kubeIPT struct {
	*kpiptablestest.FakeIPTables
	last []byte
}

func (k *kubeIPT) RestoreAll(data []byte, _ utiliptables.FlushFlag, _ utiliptables.RestoreCountersFlag) error {
	k.last = append(k.last[:0], data...)
	return nil
}

// kubeProxy runs kube-proxy's first full syncProxyRules and one partial
// one after slice k lost an endpoint.
func kubeProxy(w *world, k int) (*result, error) {
	res := &result{}
	ipt := &kubeIPT{FakeIPTables: kpiptablestest.NewFake()}
	cfg := &kpconfig.KubeProxyConfiguration{
		IPTables:      kpconfig.KubeProxyIPTablesConfiguration{MasqueradeBit: ptr.To[int32](14), LocalhostNodePorts: ptr.To(false)},
		SyncPeriod:    metav1.Duration{Duration: time.Hour},
		MinSyncPeriod: metav1.Duration{Duration: time.Second},
	}
	p, err := kpiptables.NewProxier(context.Background(), cfg, v1.IPv4Protocol, ipt, sysctltest.NewFake(),
		proxyutil.NewDetectLocalByCIDR(clusterCIDR), nodeName, net.ParseIP("192.168.0.2"), &events.FakeRecorder{}, nil, false)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy NewProxier: %w", err)
	}
	for _, s := range w.services {
		p.OnServiceAdd(s)
	}
	for _, s := range w.slices {
		p.OnEndpointSliceAdd(s)
	}
	p.OnServiceSynced() // not initialized yet: no sync
	runtime.GC()
	start := time.Now()
	p.OnEndpointSlicesSynced() // the first, full syncProxyRules
	res.renderFull = time.Since(start)
	res.full = bytes.Clone(ipt.last)
	p.OnEndpointSliceUpdate(w.slices[k], w.changed(k))
	start = time.Now()
	p.OnEndpointSlicesSynced() // a synchronous partial syncProxyRules
	res.renderPartial = time.Since(start)
	res.partial = bytes.Clone(ipt.last)
	return res, nil
}

// firstPacket traces the first packet of a pod's connection to sampled
// services and returns the mean number of rules evaluated.
func firstPacket(input []byte, prefix string, w *world) (float64, int, error) {
	tables, err := iptablestest.ParseTables(input)
	if err != nil {
		return 0, 0, err
	}
	tr := &iptablestest.Tracer{Tables: tables, Prefix: prefix, LocalAddrs: []netip.Addr{netip.MustParseAddr("192.168.0.2")}}
	src := netip.MustParseAddr("10.0.0.5")
	total, n := 0, 0
	for i := 0; i < len(w.services); i += max(1, len(w.services)/200) {
		res := tr.Trace(iptablestest.Packet{Src: src, Dst: netip.MustParseAddr(w.services[i].Spec.ClusterIP), Proto: "tcp", DPort: 80})
		if len(res.Endpoints()) == 0 {
			return 0, 0, fmt.Errorf("%s: service %d not reached", prefix, i)
		}
		total += res.Rules
		n++
	}
	return float64(total) / float64(n), tables.RuleCount("nat"), nil
}

// netns runs iptables-restore in a fresh namespace.
type netns struct{ name string }

func newNetns(tag string) (*netns, error) {
	ns := &netns{name: fmt.Sprintf("outpost-bench-%s-%d", tag, os.Getpid())}
	_ = exec.Command("ip", "netns", "del", ns.name).Run()
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	return ns, nil
}

func (ns *netns) close() { _ = exec.Command("ip", "netns", "del", ns.name).Run() }

func (ns *netns) restore(input []byte, noflush bool) (time.Duration, error) {
	args := []string{"netns", "exec", ns.name, "iptables-restore", "-w", "5"}
	if noflush {
		args = append(args, "--noflush")
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdin = bytes.NewReader(input)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("iptables-restore: %v: %s", err, out)
	}
	return time.Since(start), nil
}

// inScratchNetns re-runs this program inside a new network namespace and
// returns its exit code.
func inScratchNetns() int {
	ns, err := newNetns("scratch")
	if err != nil {
		fatal(err)
	}
	defer ns.close()
	exe, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.name, exe}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "BENCH_SCRATCH_NETNS="+ns.name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		}
		fatal(err)
	}
	return 0
}

// withoutNfacct drops kube-proxy's "-m nfacct --nfacct-name X" matches: the
// counters exist only where the proxier ran, not in the fresh namespace the
// restore is timed in; they are metrics, not rules that steer packets.
func withoutNfacct(in []byte) []byte {
	lines := strings.Split(string(in), "\n")
	for i, l := range lines {
		if j := strings.Index(l, " -m nfacct --nfacct-name "); j >= 0 {
			rest := l[j+len(" -m nfacct --nfacct-name "):]
			_, after, _ := strings.Cut(rest, " ")
			lines[i] = l[:j] + " " + after
		}
	}
	return []byte(strings.Join(lines, "\n"))
}

func realRestores(r *result, tag string, fullNoflush bool) error {
	ns, err := newNetns(tag)
	if err != nil {
		return err
	}
	defer ns.close()
	if r.restoreFull, err = ns.restore(withoutNfacct(r.full), fullNoflush); err != nil {
		return err
	}
	r.restorePartial, err = ns.restore(withoutNfacct(r.partial), true)
	return err
}

// side is one of the two proxies being compared.
type side struct {
	name, prefix, tag string
	run               func() (*result, error)
	// fullNoflush: whether the timed full restore may use --noflush.
	fullNoflush bool
	results     []*result
}

// timings returns one duration of every round, in seconds.
func (s *side) timings(of func(*result) time.Duration) []float64 {
	out := make([]float64, len(s.results))
	for i, r := range s.results {
		out[i] = of(r).Seconds()
	}
	return out
}

func main() {
	sizes := []int{1000, 10000, 30000}
	flag.Var(listflag.New(&sizes, strconv.Atoi), "sizes", "Comma-separated service counts.")
	eps := flag.Int("endpoints", 10, "Endpoints per service.")
	rounds := flag.Int("rounds", 5, "Interleaved rounds per size (odd rounds run kube-proxy first); timings are their medians.")
	out := flag.String("out", "", "Also write every figure with its rounds to this JSON file (what make plots reads).")
	real := flag.Bool("real", os.Geteuid() == 0, "Also time the real iptables-restore in a network namespace (root).")
	realMax := flag.Int("real-max", 10000, "Largest size at which real restores are timed (kube-proxy's take minutes per round at 30k).")
	kubeNoflushMax := flag.Int("kube-full-noflush-max", 1000, "Largest size at which kube-proxy's full restore runs with --noflush (it grows quadratically: unfinished after 10 min at 10k).")
	flag.Parse()
	if *rounds < 1 {
		fatal(fmt.Errorf("-rounds must be at least 1, got %d", *rounds))
	}
	if *real && os.Getenv("BENCH_SCRATCH_NETNS") == "" {
		// kube-proxy's proxier creates nfacct counters (and may touch
		// conntrack) in the namespace it runs in: run the whole bench in
		// a throwaway one.
		os.Exit(inScratchNetns())
	}

	dur := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	secs := func(x float64) string { return dur(time.Duration(x * float64(time.Second))) }
	var figures []benchresult.Figure
	var table strings.Builder
	fmt.Fprintf(&table, "| services | metric | outpost (compact) | kube-proxy v1.37.2 | ratio |\n|---|---|---|---|---|\n")
	for _, n := range sizes {
		w := gen(n, *eps)
		k := n / 2
		ours := &side{name: "outpost", prefix: "OUTPOST", tag: "o", fullNoflush: true,
			run: func() (*result, error) { return outpost(w, k, render.Compact, "OUTPOST") }}
		kube := &side{name: "kube-proxy", prefix: "KUBE", tag: "k", fullNoflush: n <= *kubeNoflushMax,
			run: func() (*result, error) { return kubeProxy(w, k) }}
		for round := range *rounds {
			order := []*side{ours, kube}
			if round%2 == 1 {
				order = []*side{kube, ours}
			}
			for _, s := range order {
				r, err := s.run()
				if err != nil {
					fatal(err)
				}
				if *real && n <= *realMax {
					if err := realRestores(r, s.tag, s.fullNoflush); err != nil {
						fatal(err)
					}
				}
				s.results = append(s.results, r)
			}
			o, kp := ours.results[round], kube.results[round]
			line := fmt.Sprintf("%d services, round %d/%d (%s first): full render %s vs %s, one-endpoint render %s vs %s",
				n, round+1, *rounds, order[0].name, dur(o.renderFull), dur(kp.renderFull), dur(o.renderPartial), dur(kp.renderPartial))
			if *real && n <= *realMax {
				line += fmt.Sprintf(", restore full %s vs %s, one-endpoint %s vs %s", dur(o.restoreFull), dur(kp.restoreFull), dur(o.restorePartial), dur(kp.restorePartial))
			}
			fmt.Fprintln(os.Stderr, line)
		}
		// The rule sets are the same in every round; the last one is traced.
		o, kp := ours.results[len(ours.results)-1], kube.results[len(kube.results)-1]
		var err error
		if o.firstPacket, o.natRules, err = firstPacket(o.full, ours.prefix, w); err != nil {
			fatal(err)
		}
		if kp.firstPacket, kp.natRules, err = firstPacket(kp.full, kube.prefix, w); err != nil {
			fatal(err)
		}
		if os.Getenv("BENCH_DUMP") != "" {
			_ = os.WriteFile(fmt.Sprintf("%s/outpost-%d.txt", os.Getenv("BENCH_DUMP"), n), o.full, 0o644)
			_ = os.WriteFile(fmt.Sprintf("%s/kube-proxy-%d.txt", os.Getenv("BENCH_DUMP"), n), kp.full, 0o644)
		}
		median := fmt.Sprintf("median of %d", *rounds)
		timed := func(metric, label, kubeNote string, of func(*result) time.Duration) {
			a := benchresult.Rounds(metric, "", "seconds", n, ours.name, ours.timings(of))
			b := benchresult.Rounds(metric, "", "seconds", n, kube.name, kube.timings(of))
			figures = append(figures, a, b)
			fmt.Fprintf(&table, "| %d | %s (%s) | %s | %s%s | %.3g |\n", n, label, median, secs(a.Value), secs(b.Value), kubeNote, a.Value/b.Value)
		}
		counted := func(metric, unit, label string, a, b float64, show func(float64) string) {
			figures = append(figures,
				benchresult.Figure{Metric: metric, Unit: unit, Size: n, Side: ours.name, Value: a},
				benchresult.Figure{Metric: metric, Unit: unit, Size: n, Side: kube.name, Value: b})
			fmt.Fprintf(&table, "| %d | %s | %s | %s | %.3g |\n", n, label, show(a), show(b), a/b)
		}
		bytesOf := func(x float64) string { return size(int(x)) }
		timed("full-render", "full render (first sync)", "", func(r *result) time.Duration { return r.renderFull })
		counted("full-restore-input", "bytes", "full restore input", float64(len(o.full)), float64(len(kp.full)), bytesOf)
		timed("one-endpoint-render", "one-endpoint change: render", "", func(r *result) time.Duration { return r.renderPartial })
		counted("one-endpoint-restore-input", "bytes", "one-endpoint change: restore input", float64(len(o.partial)), float64(len(kp.partial)), bytesOf)
		counted("nat-rules", "rules", "nat rules", float64(o.natRules), float64(kp.natRules), func(x float64) string { return strconv.Itoa(int(x)) })
		counted("first-packet-rules", "rules", "rules walked by a first packet (mean)", o.firstPacket, kp.firstPacket, func(x float64) string { return fmt.Sprintf("%.1f", x) })
		if *real && n <= *realMax {
			kubeNote := ""
			if !kube.fullNoflush {
				kubeNote = " (flushing restore; --noflush is quadratic)"
			}
			timed("real-restore-full", "real iptables-restore, full (outpost --noflush)", kubeNote, func(r *result) time.Duration { return r.restoreFull })
			timed("real-restore-one-endpoint", "real iptables-restore --noflush, one-endpoint change", "", func(r *result) time.Duration { return r.restorePartial })
		}
	}
	fmt.Print(table.String())
	if *out != "" {
		f := benchresult.File{Bench: "bench-syncer", Written: time.Now().UTC(), Machine: fmt.Sprintf("%d CPUs, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH), Figures: figures}
		if err := benchresult.Write(*out, f); err != nil {
			fatal(err)
		}
		fmt.Fprintln(os.Stderr, "wrote", *out)
	}
}

func size(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench-syncer:", err)
	os.Exit(1)
}
