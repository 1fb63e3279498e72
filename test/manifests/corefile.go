package manifests

import (
	"bufio"
	"bytes"
	"strings"
)

// ClusterCorefile turns the repository's Corefile.example, written for a
// CoreDNS that runs outside the cluster (`make run`), into the one the
// in-cluster Deployment mounts (config/components/dns/Corefile): a Pod's plugin
// reads its service account, so every `kubeconfig` directive goes. Nothing
// else changes, so the two can never disagree on anything else.
func ClusterCorefile(example []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(example))
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == "kubeconfig" {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// CorefileListeners reports the TCP/UDP ports a Corefile makes CoreDNS listen
// on, keyed by what listens: "dns" (the server blocks), "prometheus",
// "health" and "ready" (with CoreDNS' default ports when no address is
// given). It understands the plain layout of Corefile.example, not every
// Caddyfile construct.
func CorefileListeners(corefile []byte) map[string][]string {
	defaults := map[string]string{"prometheus": "9153", "health": "8080", "ready": "8181"}
	out := map[string][]string{}
	depth := 0
	sc := bufio.NewScanner(bytes.NewReader(corefile))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if depth == 0 && strings.HasSuffix(line, "{") {
			// A server block: "zone[:port] ... {"; CoreDNS' default port is 53.
			for _, key := range fields[:len(fields)-1] {
				key = strings.TrimPrefix(strings.TrimPrefix(key, "dns://"), ".")
				port := "53"
				if i := strings.LastIndex(key, ":"); i >= 0 {
					port = key[i+1:]
				}
				out["dns"] = append(out["dns"], port)
			}
		} else if depth == 1 {
			if def, ok := defaults[fields[0]]; ok {
				port := def
				if len(fields) > 1 && fields[1] != "{" {
					port = fields[1][strings.LastIndex(fields[1], ":")+1:]
				}
				out[fields[0]] = append(out[fields[0]], port)
			}
		}
		depth += strings.Count(line, "{") - strings.Count(line, "}")
	}
	return out
}
