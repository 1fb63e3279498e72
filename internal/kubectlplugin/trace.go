package kubectlplugin

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	// The tracer lives with the syncer's test doubles, whose package asks
	// production code not to import it; it is the one reading of the rules
	// there is, so explain uses it rather than a copy until it moves out.
	"github.com/outpost-dev/outpost/operator/syncer/iptablestest"
)

// traceService follows a first packet from a source of the matching
// family to every ClusterIP and port of svc through rules (the output of
// `outpost-syncer --once --dry-run`), whose chains start with prefix.
func traceService(rules []byte, prefix string, sources []netip.Addr, svc *corev1.Service) ([]PortTrace, error) {
	tables, err := iptablestest.ParseTables(rules)
	if err != nil {
		return nil, fmt.Errorf("--rules: not iptables-restore input: %w", err)
	}
	tr := &iptablestest.Tracer{Tables: tables, Prefix: prefix}
	var out []PortTrace
	for _, ip := range svc.Spec.ClusterIPs {
		dst, err := netip.ParseAddr(ip)
		if err != nil {
			continue // "None": a headless Service has no rules
		}
		src, ok := sourceFor(sources, dst)
		if !ok {
			return out, fmt.Errorf("--source: no %s address to send from to %s", family(dst), dst)
		}
		for _, p := range svc.Spec.Ports {
			res := tr.Trace(iptablestest.Packet{Src: src, Dst: dst, Proto: strings.ToLower(string(p.Protocol)), DPort: int(p.Port)})
			out = append(out, PortTrace{
				ClusterIP: ip, Port: p.Port, Protocol: string(p.Protocol), Source: src.String(),
				Endpoints: res.Endpoints(), Verdicts: res.Verdicts(), Rules: res.Rules,
			})
		}
	}
	return out, nil
}

func sourceFor(sources []netip.Addr, dst netip.Addr) (netip.Addr, bool) {
	for _, s := range sources {
		if s.Is4() == dst.Is4() {
			return s, true
		}
	}
	return netip.Addr{}, false
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
