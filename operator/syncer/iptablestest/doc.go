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
// The operator, the syncer and CoreDNS never import it (a test of the
// syncer's dependencies says so). One client tool does: `kubectl outpost
// explain --rules` shows a user where the Tracer sends a first packet, the
// same oracle the tests trust.
package iptablestest
