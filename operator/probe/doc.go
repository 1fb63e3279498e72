// Package probe health-checks the addresses of ExternalBackends (TCP
// connect, HTTP or HTTPS GET, the gRPC health protocol, a DNS query)
// outside of reconciles and tells the reconciler when an address turns
// ready or not ready.
//
// A Prober is a manager Runnable with a bounded pool of workers; each
// target is probed every Interval (±10% jitter) with a Timeout, running
// all of the spec's checks at once: a probe passes only if every check
// does. An address turns not ready after UnhealthyThreshold consecutive
// failures and ready again after HealthyThreshold consecutive successes.
// HTTP(S) counts 2xx and 3xx as healthy unless told otherwise (redirects
// are not followed); TLS does not check the certificate unless
// Check.VerifyTLS or Check.RootCAs is set.
//
// Pass only addresses that passed the address policy (--denied-cidrs):
// a probe is a connection from the operator's own pod, so probing a denied
// address (a metadata service, the API server's ClusterIP) would hand
// users a port scanner inside the cluster.
//
// The reconciler drives it like this:
//
//	// in Reconcile, when spec.healthCheck is set:
//	err := prober.Ensure(req.NamespacedName, targets, spec) // targets: every address to publish
//	for _, t := range targets {
//		st := prober.Status(req.NamespacedName, t.Addr)
//		// st.Ready -> EndpointSlice ready/serving; st.Known false: no result yet;
//		// st.LastError for the Healthy condition's message.
//	}
//	// when healthCheck is removed or the ExternalBackend is gone:
//	prober.Forget(req.NamespacedName)
//
// Ensure is idempotent and drops targets no longer listed, so probes stop
// when an address goes away. The Prober calls Options.Notify with the owner
// when a target's readiness changes and when a target gets its first
// result (so the Healthy condition can leave "unknown").
//
// New targets start ready. The API promises that without a healthCheck
// every address is ready, and an ExternalBackend points at machines that
// already serve traffic: adding a healthCheck, adding an address, or
// restarting the operator (which forgets all results) must not take
// working addresses out of the slices while the first probes run. An
// address that is in fact down goes not ready after UnhealthyThreshold
// failures, the first of which is probed right away (within 10% of the
// interval). This is the choice of cloud load balancers in "fail open"
// and of Envoy's default for new hosts, not of a Pod's readiness probe:
// a Pod's process has just started and may not listen yet; an external
// backend has not. A reconciler that knows an address was not ready (it
// reads its own EndpointSlice after a restart) passes
// Target.StartNotReady, and that address needs HealthyThreshold
// successes first.
package probe
