// Package iptablestest holds the syncer's test doubles and oracle, kept out
// of the production packages the way kube-proxy keeps its fake and parser in
// pkg/util/iptables/testing:
//
//   - Fake is an in-memory iptables that applies restore input as
//     iptables-restore --noflush does and satisfies restore.Runner.
//   - Tracer follows a packet through restore input and reports which
//     endpoints it can reach, masqueraded or not, and how many rules it
//     walks.
//
// Production code must not import it.
package iptablestest
