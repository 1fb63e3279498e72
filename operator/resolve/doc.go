// Package resolve turns the DNS names in an ExternalBackend's spec.addresses
// into IP addresses and keeps them current.
//
// A Resolver sends A and AAAA queries with github.com/miekg/dns, because the
// reconciler needs each record's TTL (net.LookupIP hides it). It follows CNAME
// chains (the TTL of an answer is the smallest TTL along the chain), retries
// over TCP when a UDP answer is truncated, and asks the servers of
// /etc/resolv.conf or an explicit --dns-server list in order. Every name is
// absolute: the search list of resolv.conf is not applied, because inside a
// pod it would turn "db.example.com" into "db.example.com.default.svc.cluster.local".
//
// A Refresher owns re-resolution and runs as a manager Runnable, so no
// reconcile ever waits for DNS. The reconciler drives it like this:
//
//	// in Reconcile, for a live ExternalBackend:
//	err := refresher.Ensure(req.NamespacedName, names, resolve.Spec{Families: ..., MinTTL: ..., MaxTTL: ...})
//	for _, name := range names {
//		st, _ := refresher.Lookup(req.NamespacedName, name)
//		// st.Resolved == false: first answer pending (a notification follows).
//		// st.Addresses: what to publish (kept during a failure until the grace ends).
//		// st.Err != nil: Resolved=False with st.Err.Reason and st.Err.Message.
//	}
//	// when the ExternalBackend is gone:
//	refresher.Forget(req.NamespacedName)
//
// After a restart or a change of leader, EnsureFrom instead of Ensure
// hands over what the earlier run published (resolve.Known, read back from
// status.endpoints and the EndpointSlices): a name starts with those
// addresses, not with nothing, and keeps them until an answer replaces them
// or, if the name fails, one MaxTTL after they were last resolved.
//
// Ensure is idempotent: call it on every reconcile with the full list of
// names; names no longer listed stop being resolved. A name is re-resolved
// when its TTL, clamped to [MinTTL, MaxTTL], runs out (minus up to 10%
// jitter, so a record change is seen within the TTL). When an answer changes
// (addresses come or go, a failure starts or ends or changes reason, kept
// addresses are dropped after the grace) the Refresher calls Options.Notify with
// the owner, which the reconciler turns into a reconcile request (see package
// notify). A plain refresh that returns the same addresses notifies nobody.
// With Spec.RotationWindow, an answer adds its addresses and an address goes
// only once no answer listed it for the window, so a server that answers
// with a rotating subset of its records does not change the set each time.
//
// On failure (timeout, SERVFAIL, NXDOMAIN, REFUSED, or a name with no
// address of any requested family) the last known addresses stay for one
// more MaxTTL counted from the first failed attempt, then are dropped.
package resolve
