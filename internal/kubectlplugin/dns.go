package kubectlplugin

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// dnsTimeout bounds each question, so an unreachable server costs the
// screen a few seconds, not a hang.
const dnsTimeout = 2 * time.Second

// defaultDNSServer is the first nameserver of resolvConf, as a pod's
// resolver would ask.
func defaultDNSServer(resolvConf string) (string, error) {
	cfg, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return "", fmt.Errorf("no --dns-server given and %w", err)
	}
	if len(cfg.Servers) == 0 {
		return "", fmt.Errorf("no --dns-server given and %s lists no nameserver", resolvConf)
	}
	return net.JoinHostPort(cfg.Servers[0], cfg.Port), nil
}

// dnsQuestions are what a client of the Service asks: its A and AAAA
// records, and an SRV record per named port.
func dnsQuestions(name, namespace, clusterDomain string, ports []corev1.ServicePort) []DNSAnswer {
	fqdn := dns.Fqdn(fmt.Sprintf("%s.%s.svc.%s", name, namespace, clusterDomain))
	qs := []DNSAnswer{{Name: fqdn, Type: "A"}, {Name: fqdn, Type: "AAAA"}}
	for _, p := range ports {
		if p.Name != "" {
			qs = append(qs, DNSAnswer{Name: fmt.Sprintf("_%s._%s.%s", p.Name, strings.ToLower(string(p.Protocol)), fqdn), Type: "SRV"})
		}
	}
	return qs
}

// askDNS fills in each question's answer from server; failures are
// answers too.
func askDNS(server string, questions []DNSAnswer) []DNSAnswer {
	udp := &dns.Client{Timeout: dnsTimeout}
	tcp := &dns.Client{Net: "tcp", Timeout: dnsTimeout}
	out := make([]DNSAnswer, len(questions))
	for i, q := range questions {
		out[i] = q
		msg := new(dns.Msg).SetQuestion(q.Name, dns.StringToType[q.Type])
		resp, _, err := udp.Exchange(msg, server)
		if err == nil && resp.Truncated {
			resp, _, err = tcp.Exchange(msg, server)
		}
		switch {
		case err != nil:
			out[i].Error = err.Error()
		case resp.Rcode != dns.RcodeSuccess:
			out[i].Error = dns.RcodeToString[resp.Rcode]
		default:
			for _, rr := range resp.Answer {
				out[i].Records = append(out[i].Records, rdata(rr))
			}
		}
	}
	return out
}

// rdata is rr without its owner name, TTL and class, keeping the type
// when it differs from the question's (a CNAME on the way).
func rdata(rr dns.RR) string {
	data := strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String()))
	switch rr.(type) {
	case *dns.A, *dns.AAAA, *dns.SRV:
		return data
	}
	return dns.TypeToString[rr.Header().Rrtype] + " " + data
}
