// Package syncer is Outpost's kube-proxy: it tracks Services and
// EndpointSlices and keeps the node's iptables rules in line with them.
//
//   - ChangeTracker (changetracker.go) turns informer events into state and
//     a dirty set; its handlers never touch iptables.
//   - objects.go reduces API objects to what the rules need.
//   - render (subpackage) is the pure rule renderer; rules holds the typed
//     rule set and transactions; restore applies them; iptablestest holds
//     the in-memory fake and the packet tracer tests use as an oracle.
//   - Syncer (syncer.go) is the loop: re-render dirty services, diff against
//     what was applied, run one iptables-restore per family.
package syncer
