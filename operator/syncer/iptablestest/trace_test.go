package iptablestest

import (
	"net/netip"
	"slices"
	"testing"
)

// A hand-written rule set in kube-proxy's style: the tracer must follow
// jumps, RETURN, marks, probabilistic branches and REJECT.
const rulesText = `*nat
:P-SERVICES - [0:0]
:P-SVC - [0:0]
:P-SEP-1 - [0:0]
:P-SEP-2 - [0:0]
:P-POSTROUTING - [0:0]
:P-MARK-MASQ - [0:0]
-A P-SERVICES -m comment --comment "ns/svc cluster IP" -m tcp -p tcp -d 10.96.0.1 --dport 80 -j P-SVC
-A P-SVC -m tcp -p tcp -d 10.96.0.1 --dport 80 ! -s 10.0.0.0/8 -j P-MARK-MASQ
-A P-SVC -m statistic --mode random --probability 0.5000000000 -j P-SEP-1
-A P-SVC -j P-SEP-2
-A P-SEP-1 -s 10.0.0.1 -j P-MARK-MASQ
-A P-SEP-1 -m tcp -p tcp -j DNAT --to-destination 10.0.0.1:8080
-A P-SEP-2 -m recent --name P-SEP-2 --set -m tcp -p tcp -j DNAT --to-destination 10.0.0.2:8080
-A P-MARK-MASQ -j MARK --or-mark 0x4000
-A P-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A P-POSTROUTING -j MARK --xor-mark 0x4000
-A P-POSTROUTING -j MASQUERADE --random-fully
COMMIT
*filter
:P-SERVICES - [0:0]
:P-EXTERNAL-SERVICES - [0:0]
-A P-SERVICES -m comment --comment "ns/empty has no endpoints" -m tcp -p tcp -d 10.96.0.2 --dport 80 -j REJECT
COMMIT
`

func TestTrace(t *testing.T) {
	tables, err := ParseTables([]byte(rulesText))
	if err != nil {
		t.Fatal(err)
	}
	tr := &Tracer{Tables: tables, Prefix: "P"}
	pod, outside := netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("203.0.113.9")
	svc := netip.MustParseAddr("10.96.0.1")

	res := tr.Trace(Packet{Src: pod, Dst: svc, Proto: "tcp", DPort: 80})
	if got := res.Endpoints(); !slices.Equal(got, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) {
		t.Errorf("endpoints %v", got)
	}
	if res.Masquerade("10.0.0.1:8080") || res.Masquerade("10.0.0.2:8080") {
		t.Error("pod traffic masqueraded")
	}
	if res.Rules == 0 {
		t.Error("no rules counted")
	}
	if !tr.Trace(Packet{Src: outside, Dst: svc, Proto: "tcp", DPort: 80}).Masquerade("10.0.0.2:8080") {
		t.Error("outside traffic not masqueraded")
	}
	// Hairpin: only the path back to the source itself is masqueraded.
	hp := tr.Trace(Packet{Src: netip.MustParseAddr("10.0.0.1"), Dst: svc, Proto: "tcp", DPort: 80})
	if !hp.Masquerade("10.0.0.1:8080") || hp.Masquerade("10.0.0.2:8080") {
		t.Errorf("hairpin: %+v", hp.Outcomes)
	}
	if got := tr.Trace(Packet{Src: pod, Dst: netip.MustParseAddr("10.96.0.2"), Proto: "tcp", DPort: 80}).Verdicts(); !slices.Equal(got, []string{"REJECT"}) {
		t.Errorf("no-endpoint service: %v", got)
	}
	if got := tr.Trace(Packet{Src: pod, Dst: svc, Proto: "udp", DPort: 80}).Verdicts(); !slices.Equal(got, []string{"ACCEPT"}) {
		t.Errorf("other protocol: %v", got)
	}
	// The recent list set on the path to SEP-2 is reported.
	for _, o := range res.Outcomes {
		if o.Endpoint == "10.0.0.2:8080" && !slices.Contains(o.Sets, "P-SEP-2") {
			t.Errorf("recent --set not recorded: %+v", o)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"*nat\n-A UNDECLARED -j ACCEPT\nCOMMIT\n",
		"*nat\n:C - [0:0]\n-A C -m comment --comment \"open\nCOMMIT\n",
		"*nat\nbogus\n",
	} {
		if _, err := ParseTables([]byte(in)); err == nil {
			t.Errorf("parsed %q", in)
		}
	}
	// Later inputs apply like --noflush: declaring flushes, -X deletes.
	tables, _ := ParseTables([]byte("*nat\n:C - [0:0]\n:D - [0:0]\n-A C -j ACCEPT\nCOMMIT\n"))
	if err := tables.Parse([]byte("*nat\n:C - [0:0]\n-X D\nCOMMIT\n")); err != nil {
		t.Fatal(err)
	}
	if len(tables["nat"]["C"]) != 0 || tables["nat"]["D"] != nil {
		t.Errorf("noflush semantics: %v", tables["nat"])
	}
}
