// Package monitoring checks config/monitoring against the binaries: every
// PromQL expression of the alerts and the dashboard parses, and every metric
// it reads is one the operator, the syncer or the CoreDNS plugin exports.
// It is a module of its own because the PromQL parser
// (github.com/prometheus/prometheus) would otherwise join the module graph
// of everything Outpost ships; `make test` runs it (test-monitoring).
package monitoring
