package rules

import (
	"net/netip"
	"slices"
	"testing"
)

func chainWith(rs *Ruleset, t Table, name string, lines ...string) {
	c := rs.Chain(t, name)
	for _, l := range lines {
		c.Rules.Write("-A", name, l)
	}
}

func TestTransactionFullAndDiff(t *testing.T) {
	before := NewRuleset()
	chainWith(before, NAT, "P-SERVICES", "-d 10.96.0.1 -j P-SVC-A", "-d 10.96.0.2 -j P-SVC-B")
	chainWith(before, NAT, "P-SVC-A", "-j DNAT --to-destination 10.0.0.1:80")
	chainWith(before, NAT, "P-SVC-B", "-j DNAT --to-destination 10.0.0.2:80")
	chainWith(before, Filter, "P-SERVICES")

	want := "*filter\n:P-SERVICES - [0:0]\nCOMMIT\n" +
		"*nat\n:P-SERVICES - [0:0]\n:P-SVC-A - [0:0]\n:P-SVC-B - [0:0]\n" +
		"-A P-SERVICES -d 10.96.0.1 -j P-SVC-A\n-A P-SERVICES -d 10.96.0.2 -j P-SVC-B\n" +
		"-A P-SVC-A -j DNAT --to-destination 10.0.0.1:80\n-A P-SVC-B -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n"
	if got := string(before.Full().Bytes()); got != want {
		t.Errorf("full:\n%s\nwant:\n%s", got, want)
	}

	after := NewRuleset()
	chainWith(after, NAT, "P-SERVICES", "-d 10.96.0.1 -j P-SVC-A")
	chainWith(after, NAT, "P-SVC-A", "-j DNAT --to-destination 10.0.0.9:80")
	chainWith(after, Filter, "P-SERVICES")
	tx := after.Diff(before)
	if got := tx.Written(); !slices.Equal(got, []ChainRef{{NAT, "P-SERVICES"}, {NAT, "P-SVC-A"}}) {
		t.Errorf("written %v", got)
	}
	if got := tx.Deleted(); !slices.Equal(got, []ChainRef{{NAT, "P-SVC-B"}}) {
		t.Errorf("deleted %v", got)
	}
	// Only the nat table is touched; the deleted chain is flushed before -X.
	wantTx := "*nat\n:P-SERVICES - [0:0]\n:P-SVC-A - [0:0]\n:P-SVC-B - [0:0]\n" +
		"-A P-SERVICES -d 10.96.0.1 -j P-SVC-A\n-A P-SVC-A -j DNAT --to-destination 10.0.0.9:80\n-X P-SVC-B\nCOMMIT\n"
	if got := string(tx.Bytes()); got != wantTx {
		t.Errorf("diff:\n%s\nwant:\n%s", got, wantTx)
	}
	if !after.Diff(after).Empty() {
		t.Error("diff of a rule set with itself is not empty")
	}
}

func TestLineBuffer(t *testing.T) {
	var b LineBuffer
	b.Start("-A", "C").Word("-p", "tcp").Int(80).AddrPort(netip.MustParseAddrPort("[fd00::1]:8080")).End()
	b.Write("-A C -j RETURN")
	if got := string(b.Bytes()); got != "-A C -p tcp 80 [fd00::1]:8080\n-A C -j RETURN\n" || b.Lines() != 2 {
		t.Errorf("buffer %q, %d lines", got, b.Lines())
	}
	b.Reset()
	if b.Lines() != 0 || len(b.Bytes()) != 0 {
		t.Error("reset kept data")
	}
}
