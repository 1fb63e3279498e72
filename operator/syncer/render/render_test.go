package render_test

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

const testNode = "node1"

var (
	nodeIP     = netip.MustParseAddr("192.168.0.2")
	podSrc     = netip.MustParseAddr("10.0.0.5")     // inside the cluster CIDR
	outsideSrc = netip.MustParseAddr("203.0.113.99") // outside it
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func baseConfig(prefix string, layout render.Layout) render.Config {
	return render.Config{
		Prefix:       prefix,
		Layout:       layout,
		NodeName:     testNode,
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}
}

func ep(addr string, port int) render.Endpoint {
	return render.Endpoint{IP: ip(addr), Port: port, Ready: true, Serving: true}
}

func tcp(ns, name, port string, clusterIP string, p int) render.ServicePort {
	return render.ServicePort{Namespace: ns, Name: name, PortName: port, Protocol: "tcp", ClusterIP: ip(clusterIP), Port: p}
}

type world struct {
	services  []render.ServicePort
	endpoints map[string][]render.Endpoint
}

func (w *world) add(sp render.ServicePort, eps ...render.Endpoint) {
	if w.endpoints == nil {
		w.endpoints = map[string][]render.Endpoint{}
	}
	w.services = append(w.services, sp)
	sort.Slice(eps, func(i, j int) bool { return eps[i].String() < eps[j].String() })
	w.endpoints[render.EndpointsKey(&sp)] = eps
}

func renderText(t *testing.T, cfg render.Config, w *world) ([]byte, *rules.Ruleset) {
	t.Helper()
	r, err := render.NewRenderer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rs := r.Render(w.services, w.endpoints)
	return rs.Full().Bytes(), rs
}

func tracer(t *testing.T, cfg render.Config, w *world) *iptablestest.Tracer {
	t.Helper()
	text, _ := renderText(t, cfg, w)
	tables, err := iptablestest.ParseTables(text)
	if err != nil {
		t.Fatalf("parse rendered rules: %v\n%s", err, text)
	}
	return &iptablestest.Tracer{Tables: tables, Prefix: cfg.Prefix, LocalAddrs: []netip.Addr{nodeIP}}
}

// both runs a semantic test against both layouts: they must agree.
func both(t *testing.T, f func(t *testing.T, cfg render.Config)) {
	for _, l := range []render.Layout{render.Compact, render.KubeProxy} {
		t.Run(l.String(), func(t *testing.T) {
			prefix := "OUTPOST"
			if l == render.KubeProxy {
				prefix = "KUBE"
			}
			f(t, baseConfig(prefix, l))
		})
	}
}

func pkt(src, dst netip.Addr, proto string, port int) iptablestest.Packet {
	return iptablestest.Packet{Src: src, Dst: dst, Proto: proto, DPort: port}
}

func TestKubeProxyChainNames(t *testing.T) {
	n := render.Names{Prefix: "KUBE"}
	if got := n.ServiceChain("ns1/svc1:p80", "tcp"); got != "KUBE-SVC-XPGD46QRK7WJZT7O" {
		t.Errorf("service chain = %s, want KUBE-SVC-XPGD46QRK7WJZT7O", got)
	}
	if got := n.EndpointChain("ns1/svc1:p80", "tcp", "10.180.0.1:80"); got != "KUBE-SEP-SXIVWICOYRO3J4NJ" {
		t.Errorf("endpoint chain = %s, want KUBE-SEP-SXIVWICOYRO3J4NJ", got)
	}
	if got := n.ExternalChain("ns2/svc2:p80", "tcp"); got != "KUBE-EXT-GNZBNJ2PO5MGZ6GT" {
		t.Errorf("external chain = %s", got)
	}
}

// kubeProxyOverall is TestOverallIPTablesRules' nat table from kube-proxy
// v1.37.2's proxier_test.go (services ns1/svc1 to ns6/svc6). Differences,
// on purpose: no localhost node-port rules (we never enable
// route_localnet, so node ports exclude 127.0.0.0/8 as kube-proxy does
// with --iptables-localhost-nodeports=false), and no nfacct counters.
const kubeProxyOverall = `
-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j KUBE-EXT-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-4SW47YFZTEDKD3PK -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
`

// overallWorld is the services of kube-proxy's TestOverallIPTablesRules.
func overallWorld() *world {
	w := &world{}
	w.add(tcp("ns1", "svc1", "p80", "172.30.0.41", 80), ep("10.180.0.1", 80))
	svc2 := tcp("ns2", "svc2", "p80", "172.30.0.42", 80)
	svc2.NodePort, svc2.ExternallyAccessible, svc2.ExternalPolicyLocal = 3001, true, true
	svc2.LoadBalancerIPs = []netip.Addr{ip("1.2.3.4")}
	svc2.ExternalIPs = []netip.Addr{ip("192.168.99.22")}
	svc2.HealthCheckNodePort = 30000
	w.add(svc2, ep("10.180.0.2", 80)) // no nodeName: not local
	svc3 := tcp("ns3", "svc3", "p80", "172.30.0.43", 80)
	svc3.NodePort, svc3.ExternallyAccessible = 3003, true
	w.add(svc3, ep("10.180.0.3", 80))
	svc4 := tcp("ns4", "svc4", "p80", "172.30.0.44", 80)
	svc4.ExternalIPs, svc4.ExternallyAccessible = []netip.Addr{ip("192.168.99.33")}, true
	local := ep("10.180.0.5", 80)
	local.NodeName = testNode
	w.add(svc4, ep("10.180.0.4", 80), local)
	svc5 := tcp("ns5", "svc5", "p80", "172.30.0.45", 80)
	svc5.NodePort, svc5.ExternallyAccessible, svc5.AffinitySeconds = 3002, true, 10800
	svc5.LoadBalancerIPs = []netip.Addr{ip("5.6.7.8")}
	svc5.LoadBalancerSourceRanges = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/25")}
	w.add(svc5, ep("10.180.0.3", 80))
	w.add(tcp("ns6", "svc6", "p80", "172.30.0.46", 80))
	return w
}

// rulesOf returns the sorted "-A" lines of a table in restore input.
func rulesOf(text []byte, table string) []string {
	var out []string
	cur := ""
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "*") {
			cur = line[1:]
		}
		if cur == table && strings.HasPrefix(line, "-A ") {
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return out
}

func TestKubeProxyLayoutMatchesKubeProxy(t *testing.T) {
	text, _ := renderText(t, baseConfig("KUBE", render.KubeProxy), overallWorld())
	want := rulesOf([]byte("*nat\n"+kubeProxyOverall), "nat")
	got := rulesOf(text, "nat")
	if !slices.Equal(got, want) {
		t.Errorf("nat rules differ from kube-proxy's.\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	filter := rulesOf(text, "filter")
	for _, line := range []string{
		`-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT`,
		`-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP`,
		`-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP`,
		`-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP`,
		`-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT`,
		`-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT`,
		`-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP`,
	} {
		if !slices.Contains(filter, line) {
			t.Errorf("filter table lacks kube-proxy's rule\n%s\nhave:\n%s", line, strings.Join(filter, "\n"))
		}
	}
}

// TestCompactGolden pins the compact layout's shape for the same services.
func TestCompactGolden(t *testing.T) {
	text, _ := renderText(t, baseConfig("OUTPOST", render.Compact), overallWorld())
	want := `*filter
:OUTPOST-EXTERNAL-SERVICES - [0:0]
:OUTPOST-FORWARD - [0:0]
:OUTPOST-NODEPORTS - [0:0]
:OUTPOST-PROXY-CANARY - [0:0]
:OUTPOST-PROXY-FIREWALL - [0:0]
:OUTPOST-SERVICES - [0:0]
-A OUTPOST-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j DROP
-A OUTPOST-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j DROP
-A OUTPOST-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
-A OUTPOST-FORWARD -m conntrack --ctstate INVALID -j DROP
-A OUTPOST-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A OUTPOST-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A OUTPOST-NODEPORTS -m comment --comment "ns2/svc2 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
-A OUTPOST-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by OUTPOST-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
-A OUTPOST-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
COMMIT
*nat
:OUTPOST-EXT-4SW47YFZTEDKD3PK - [0:0]
:OUTPOST-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:OUTPOST-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:OUTPOST-EXT-X27LE4BHSL4DOUIK - [0:0]
:OUTPOST-FW-NUKIZ6OKUXPJNT4C - [0:0]
:OUTPOST-MARK-MASQ - [0:0]
:OUTPOST-NODEPORTS - [0:0]
:OUTPOST-POSTROUTING - [0:0]
:OUTPOST-PROXY-CANARY - [0:0]
:OUTPOST-SEP-C6EBXVWJJZMIWKLZ - [0:0]
:OUTPOST-SEP-I77PXRDZVX7PMWMN - [0:0]
:OUTPOST-SEP-OYPFS5VJICHGATKP - [0:0]
:OUTPOST-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:OUTPOST-SEP-SXIVWICOYRO3J4NJ - [0:0]
:OUTPOST-SEP-UKSFD7AGPMPPLUHC - [0:0]
:OUTPOST-SERVICES - [0:0]
:OUTPOST-SVC-4SW47YFZTEDKD3PK - [0:0]
:OUTPOST-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:OUTPOST-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:OUTPOST-SVC-X27LE4BHSL4DOUIK - [0:0]
:OUTPOST-SVC-XPGD46QRK7WJZT7O - [0:0]
-A OUTPOST-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for ns4/svc4:p80 external destinations" -j MARK --or-mark 0x4000
-A OUTPOST-EXT-4SW47YFZTEDKD3PK -j OUTPOST-SVC-4SW47YFZTEDKD3PK
-A OUTPOST-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j OUTPOST-SVC-GNZBNJ2PO5MGZ6GT
-A OUTPOST-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j MARK --or-mark 0x4000
-A OUTPOST-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j OUTPOST-SVC-GNZBNJ2PO5MGZ6GT
-A OUTPOST-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j MARK --or-mark 0x4000
-A OUTPOST-EXT-NUKIZ6OKUXPJNT4C -j OUTPOST-SVC-NUKIZ6OKUXPJNT4C
-A OUTPOST-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j MARK --or-mark 0x4000
-A OUTPOST-EXT-X27LE4BHSL4DOUIK -j OUTPOST-SVC-X27LE4BHSL4DOUIK
-A OUTPOST-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j OUTPOST-EXT-NUKIZ6OKUXPJNT4C
-A OUTPOST-MARK-MASQ -j MARK --or-mark 0x4000
-A OUTPOST-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j OUTPOST-EXT-GNZBNJ2PO5MGZ6GT
-A OUTPOST-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j OUTPOST-EXT-NUKIZ6OKUXPJNT4C
-A OUTPOST-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j OUTPOST-EXT-X27LE4BHSL4DOUIK
-A OUTPOST-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A OUTPOST-POSTROUTING -j MARK --xor-mark 0x4000
-A OUTPOST-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A OUTPOST-SEP-C6EBXVWJJZMIWKLZ -s 10.180.0.5 -j MARK --or-mark 0x4000
-A OUTPOST-SEP-C6EBXVWJJZMIWKLZ -p tcp -j DNAT --to-destination 10.180.0.5:80
-A OUTPOST-SEP-I77PXRDZVX7PMWMN -s 10.180.0.3 -j MARK --or-mark 0x4000
-A OUTPOST-SEP-I77PXRDZVX7PMWMN -m recent --name OUTPOST-SEP-I77PXRDZVX7PMWMN --set -p tcp -j DNAT --to-destination 10.180.0.3:80
-A OUTPOST-SEP-OYPFS5VJICHGATKP -s 10.180.0.3 -j MARK --or-mark 0x4000
-A OUTPOST-SEP-OYPFS5VJICHGATKP -p tcp -j DNAT --to-destination 10.180.0.3:80
-A OUTPOST-SEP-RS4RBKLTHTF2IUXJ -s 10.180.0.2 -j MARK --or-mark 0x4000
-A OUTPOST-SEP-RS4RBKLTHTF2IUXJ -p tcp -j DNAT --to-destination 10.180.0.2:80
-A OUTPOST-SEP-SXIVWICOYRO3J4NJ -s 10.180.0.1 -j MARK --or-mark 0x4000
-A OUTPOST-SEP-SXIVWICOYRO3J4NJ -p tcp -j DNAT --to-destination 10.180.0.1:80
-A OUTPOST-SEP-UKSFD7AGPMPPLUHC -s 10.180.0.4 -j MARK --or-mark 0x4000
-A OUTPOST-SEP-UKSFD7AGPMPPLUHC -p tcp -j DNAT --to-destination 10.180.0.4:80
-A OUTPOST-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j OUTPOST-EXT-GNZBNJ2PO5MGZ6GT
-A OUTPOST-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j OUTPOST-FW-NUKIZ6OKUXPJNT4C
-A OUTPOST-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j OUTPOST-SVC-XPGD46QRK7WJZT7O
-A OUTPOST-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j OUTPOST-SVC-GNZBNJ2PO5MGZ6GT
-A OUTPOST-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j OUTPOST-SVC-X27LE4BHSL4DOUIK
-A OUTPOST-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j OUTPOST-SVC-4SW47YFZTEDKD3PK
-A OUTPOST-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j OUTPOST-SVC-NUKIZ6OKUXPJNT4C
-A OUTPOST-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j OUTPOST-EXT-GNZBNJ2PO5MGZ6GT
-A OUTPOST-SERVICES -m comment --comment "ns4/svc4:p80 external IP" -m tcp -p tcp -d 192.168.99.33 --dport 80 -j OUTPOST-EXT-4SW47YFZTEDKD3PK
-A OUTPOST-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j OUTPOST-NODEPORTS
-A OUTPOST-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j MARK --or-mark 0x4000
-A OUTPOST-SVC-4SW47YFZTEDKD3PK -m statistic --mode random --probability 0.5000000000 -j OUTPOST-SEP-UKSFD7AGPMPPLUHC
-A OUTPOST-SVC-4SW47YFZTEDKD3PK -j OUTPOST-SEP-C6EBXVWJJZMIWKLZ
-A OUTPOST-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j MARK --or-mark 0x4000
-A OUTPOST-SVC-GNZBNJ2PO5MGZ6GT -j OUTPOST-SEP-RS4RBKLTHTF2IUXJ
-A OUTPOST-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j MARK --or-mark 0x4000
-A OUTPOST-SVC-NUKIZ6OKUXPJNT4C -m recent --name OUTPOST-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j OUTPOST-SEP-I77PXRDZVX7PMWMN
-A OUTPOST-SVC-NUKIZ6OKUXPJNT4C -j OUTPOST-SEP-I77PXRDZVX7PMWMN
-A OUTPOST-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j MARK --or-mark 0x4000
-A OUTPOST-SVC-X27LE4BHSL4DOUIK -j OUTPOST-SEP-OYPFS5VJICHGATKP
-A OUTPOST-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j MARK --or-mark 0x4000
-A OUTPOST-SVC-XPGD46QRK7WJZT7O -j OUTPOST-SEP-SXIVWICOYRO3J4NJ
COMMIT
`
	if string(text) != want {
		t.Errorf("compact rules changed.\n got:\n%s\nwant:\n%s", text, want)
	}
}
