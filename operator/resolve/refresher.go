package resolve

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/internal/workpool"
)

// Options configure a Refresher.
type Options struct {
	// Resolver answers the queries. Required.
	Resolver *Resolver
	// Notify is called (from a worker goroutine, without locks held) with
	// the owner whose answer changed. It must not block; notify.Source.Notify
	// is a good fit.
	Notify func(owner types.NamespacedName)
	// Workers bounds the resolutions in flight; default 16.
	Workers int
	// MaxRecordsPerAnswer bounds the addresses taken from one answer (one
	// name, one family): the smallest are kept, so the choice is stable.
	// Zero or negative keeps them all.
	MaxRecordsPerAnswer int
	// Jitter is the largest fraction by which a refresh comes early; default
	// 0.1. Negative disables jitter.
	Jitter float64
	// Log defaults to the controller-runtime logger named "resolve".
	Log logr.Logger
}

// Address is one resolved address with the time it stops being trusted:
// the end of the clamped TTL, or the end of the grace while the name fails.
type Address struct {
	Addr    netip.Addr
	Expires time.Time
	// Confirmed is when an answer last listed Addr.
	Confirmed time.Time
}

// State is what the Refresher knows about one name of one owner.
type State struct {
	// Resolved is false until the first attempt for every family finished.
	// Addresses may be set before that: those an earlier run published
	// (see EnsureFrom).
	Resolved bool
	// Addresses to publish, sorted, IPv4 first; during a failure these are
	// the last known addresses until the grace ends.
	Addresses []Address
	// Err is the failure of the last attempt (the first failing family's),
	// nil when it succeeded.
	Err *Error
	// FailingSince is when the current run of failures began.
	FailingSince time.Time
	// LastConfirmed is when every family last answered without error.
	LastConfirmed time.Time
	// Omitted counts the records the last good answers held beyond
	// Options.MaxRecordsPerAnswer, summed over the families.
	Omitted int
}

// Addrs returns the addresses without their expiry times.
func (s State) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(s.Addresses))
	for i, a := range s.Addresses {
		out[i] = a.Addr
	}
	return out
}

type key struct {
	owner types.NamespacedName
	name  string
}

type entry struct {
	spec          Spec
	families      map[corev1.IPFamily]familyState
	resolved      bool
	lastConfirmed time.Time
	// reportedConfirmed is lastConfirmed as of the last notification: the
	// reconciler writes it to status.endpoints[].lastResolved, from which a
	// restarted operator counts the grace.
	reportedConfirmed time.Time
	due               time.Time // earliest time the next attempt may run
}

// Refresher re-resolves the names of many owners on their TTLs. Create it
// with NewRefresher and add it to the manager; Ensure, Forget and Lookup are
// safe for concurrent use and may be called before Start.
type Refresher struct {
	opts  Options
	queue workqueue.TypedDelayingInterface[key]

	mu      sync.Mutex
	entries map[key]*entry
	owners  map[types.NamespacedName]map[string]struct{}
	started bool
}

// NewRefresher returns a Refresher; it resolves nothing until Start.
func NewRefresher(opts Options) (*Refresher, error) {
	if opts.Resolver == nil {
		return nil, errors.New("resolve: Options.Resolver is required")
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	if opts.Jitter == 0 {
		opts.Jitter = 0.1
	}
	opts.Jitter = max(opts.Jitter, 0)
	if opts.Notify == nil {
		opts.Notify = func(types.NamespacedName) {}
	}
	if opts.Log.GetSink() == nil {
		opts.Log = ctrllog.Log.WithName("resolve")
	}
	return &Refresher{
		opts:    opts,
		queue:   workpool.NewFairDelayingQueue(keyNamespace),
		entries: map[key]*entry{},
		owners:  map[types.NamespacedName]map[string]struct{}{},
	}, nil
}

// NeedLeaderElection: only the leader reconciles, so only it resolves.
func (r *Refresher) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx ends. It implements manager.Runnable.
func (r *Refresher) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("resolve: Refresher started twice")
	}
	r.started = true
	r.mu.Unlock()

	workpool.Run(ctx, r.opts.Workers, r.queue.ShutDown, r.processNext)
	return nil
}

// CanonicalName is the form in which names are tracked and looked up:
// lower case, no trailing dot.
func CanonicalName(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}

// Ensure makes the Refresher resolve exactly names for owner with spec. New
// names (and names whose families changed) are resolved right away; names
// no longer listed are dropped. Calling it again with the same arguments
// changes nothing. The error names the bad spec field.
func (r *Refresher) Ensure(owner types.NamespacedName, names []string, spec Spec) error {
	return r.EnsureFrom(owner, names, spec, nil)
}

// EnsureFrom is Ensure for a reconciler that knows what an earlier run
// published: a name it starts tracking begins with its known addresses
// (see Known) instead of nothing, and keeps them until its first answer
// replaces them, or through the grace if it fails. Known addresses of
// names already tracked, or not listed, are ignored.
func (r *Refresher) EnsureFrom(owner types.NamespacedName, names []string, spec Spec, known []Known) error {
	spec, err := spec.normalize()
	if err != nil {
		return err
	}
	want := make(map[string]struct{}, len(names))
	for _, n := range names {
		if n = CanonicalName(n); n != "" {
			want[n] = struct{}{}
		}
	}
	now := time.Now()
	var resolveNow []key
	r.mu.Lock()
	for name := range r.owners[owner] {
		if _, ok := want[name]; !ok {
			delete(r.entries, key{owner, name})
		}
	}
	if len(want) == 0 {
		delete(r.owners, owner)
		forgetOwner(owner)
	} else {
		r.owners[owner] = want
	}
	for name := range want {
		k := key{owner, name}
		e, ok := r.entries[k]
		switch {
		case !ok:
			r.entries[k] = &entry{spec: spec, families: restoredFamilies(name, known, spec, now), due: now}
			resolveNow = append(resolveNow, k)
		case !slices.Equal(e.spec.Families, spec.Families):
			for f := range e.families {
				if !slices.Contains(spec.Families, f) {
					delete(e.families, f)
				}
			}
			e.spec, e.due, e.resolved = spec, now, false
			resolveNow = append(resolveNow, k)
		case e.spec.MinTTL != spec.MinTTL || e.spec.MaxTTL != spec.MaxTTL || e.spec.RotationWindow != spec.RotationWindow:
			// New bounds apply from the next answer; ask again now so a
			// shorter MaxTTL takes effect without waiting out the old one.
			e.spec, e.due = spec, now
			resolveNow = append(resolveNow, k)
		}
	}
	if len(want) > 0 {
		r.exportOwner(owner)
	}
	namesTracked.Set(float64(len(r.entries)))
	r.mu.Unlock()
	for _, k := range resolveNow {
		r.queue.Add(k)
	}
	return nil
}

// restoredFamilies is the starting state of name from the known addresses
// of its owner, per family of spec.
func restoredFamilies(name string, known []Known, spec Spec, now time.Time) map[corev1.IPFamily]familyState {
	byFamily := map[corev1.IPFamily][]Known{}
	for _, k := range known {
		f := corev1.IPv4Protocol
		if !k.Addr.Unmap().Is4() {
			f = corev1.IPv6Protocol
		}
		if CanonicalName(k.Name) == name && slices.Contains(spec.Families, f) {
			byFamily[f] = append(byFamily[f], Known{Name: name, Addr: k.Addr.Unmap(), Expires: k.Expires, Confirmed: k.Confirmed})
		}
	}
	families := map[corev1.IPFamily]familyState{}
	for f, ks := range byFamily {
		if fs, ok := restored(ks, spec, now); ok {
			families[f] = fs
		}
	}
	return families
}

// Forget stops resolving every name of owner (call it when the owner is deleted).
func (r *Refresher) Forget(owner types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.owners[owner] {
		delete(r.entries, key{owner, name})
	}
	delete(r.owners, owner)
	forgetOwner(owner)
	namesTracked.Set(float64(len(r.entries)))
}

// exportOwner updates the per-backend series of owner. Called with r.mu held.
func (r *Refresher) exportOwner(owner types.NamespacedName) {
	var oldest time.Time
	var grace time.Duration
	first := true
	for name := range r.owners[owner] {
		e, ok := r.entries[key{owner, name}]
		if !ok {
			continue
		}
		if at := e.confirmedAt(); first || at.Before(oldest) {
			oldest, first = at, false
		}
		grace = e.spec.MaxTTL
	}
	exportOwner(owner, oldest, grace)
}

// Lookup returns the state of one name of owner; false when the name is
// not tracked for owner.
func (r *Refresher) Lookup(owner types.NamespacedName, name string) (State, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[key{owner, CanonicalName(name)}]
	if !ok {
		return State{}, false
	}
	return e.state(), true
}

// confirmedAt is when every family last answered; before the first answer,
// when the addresses restored from an earlier run were (see EnsureFrom), so
// that a restart does not reset what an alert compares with the grace.
// Zero when a family has neither. Called with r.mu held.
func (e *entry) confirmedAt() time.Time {
	if !e.lastConfirmed.IsZero() {
		return e.lastConfirmed
	}
	var oldest time.Time
	for _, f := range e.spec.Families {
		fs, ok := e.families[f]
		if !ok || fs.confirmed.IsZero() {
			return time.Time{}
		}
		if oldest.IsZero() || fs.confirmed.Before(oldest) {
			oldest = fs.confirmed
		}
	}
	return oldest
}

// state merges the families of an entry. Called with r.mu held.
func (e *entry) state() State {
	st := State{Resolved: e.resolved, LastConfirmed: e.lastConfirmed}
	for _, f := range e.spec.Families {
		fs, ok := e.families[f]
		if !ok {
			continue
		}
		for _, a := range fs.addrs {
			confirmed, ok := fs.seen[a]
			if !ok {
				confirmed = fs.confirmed
			}
			st.Addresses = append(st.Addresses, Address{Addr: a, Expires: fs.expires, Confirmed: confirmed})
		}
		st.Omitted += fs.omitted
		if fs.err != nil && st.Err == nil {
			st.Err, st.FailingSince = fs.err, fs.failingSince
		}
	}
	return st
}

func (r *Refresher) processNext(ctx context.Context) bool {
	k, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(k)

	r.mu.Lock()
	e, ok := r.entries[k]
	if !ok {
		r.mu.Unlock()
		return true // forgotten
	}
	if wait := time.Until(e.due); wait > 0 {
		// An early wake-up left by an earlier life of this key: the
		// delaying queue keeps only the earliest time per key, so the
		// real schedule may have been merged into this one. Put it back.
		r.mu.Unlock()
		r.queue.AddAfter(k, wait)
		return true
	}
	spec := e.spec
	r.mu.Unlock()

	outcomes := r.resolveAll(ctx, k.name, spec)
	if ctx.Err() != nil {
		return false
	}

	now := time.Now()
	r.mu.Lock()
	if cur, ok := r.entries[k]; !ok || cur != e || !slices.Equal(e.spec.Families, spec.Families) {
		// Forgotten or changed while we were asking; Ensure queued it again.
		r.mu.Unlock()
		return true
	}
	spec = e.spec // TTL bounds may have changed meanwhile; use the current ones
	before := e.state()
	delay := spec.MaxTTL
	allOK := true
	for i, f := range spec.Families {
		var d time.Duration
		e.families[f], d = step(e.families[f], outcomes[i], spec, now)
		delay = min(delay, d)
		allOK = allOK && outcomes[i].err == nil
	}
	e.resolved = true
	if allOK {
		e.lastConfirmed = now
	}
	delay = jittered(delay, r.opts.Jitter, rand.Float64)
	e.due = now.Add(delay)
	after := e.state()
	r.exportOwner(k.owner)

	// A refresh that only confirms the same answer is news too once a
	// quarter of MaxTTL passed since the confirmation last reported, so the
	// lastResolved the status keeps for a restart is never more than that
	// out of date, at one status write per quarter MaxTTL.
	stale := !after.LastConfirmed.IsZero() && after.LastConfirmed.Sub(e.reportedConfirmed) >= spec.MaxTTL/4
	notify := changed(before, after) || stale
	if notify {
		e.reportedConfirmed = after.LastConfirmed
	}
	r.mu.Unlock()

	r.queue.AddAfter(k, delay)
	if notify {
		r.opts.Log.V(1).Info("answer changed", "owner", k.owner, "name", k.name,
			"addresses", after.Addrs(), "error", errMessage(after.Err))
		r.opts.Notify(k.owner)
	}
	return true
}

// resolveAll asks for every family of name. When no family errs but none
// has an address either, each family is marked NoAddresses, so that an
// empty name is treated like a failure: its last addresses are kept for
// the grace instead of vanishing at once.
func (r *Refresher) resolveAll(ctx context.Context, name string, spec Spec) []outcome {
	outcomes := make([]outcome, len(spec.Families))
	empty := true
	for i, f := range spec.Families {
		start := time.Now()
		ans, err := r.opts.Resolver.Resolve(ctx, name, f)
		resolutionSeconds.WithLabelValues(string(f)).Observe(time.Since(start).Seconds())
		if err != nil {
			var re *Error
			if !errors.As(err, &re) {
				re = &Error{Reason: v1alpha1.ReasonQueryFailed, Message: err.Error()}
			}
			outcomes[i] = outcome{err: re}
			empty = false
			continue
		}
		empty = empty && len(ans.Addrs) == 0
		var omitted int
		ans.Addrs, omitted = keepSmallest(ans.Addrs, r.opts.MaxRecordsPerAnswer)
		outcomes[i] = outcome{answer: ans, omitted: omitted}
	}
	if empty {
		e := errorf(v1alpha1.ReasonNoAddresses, "%s: no %s address records", name, familyWords(spec.Families))
		for i := range outcomes {
			outcomes[i] = outcome{err: e}
		}
	}
	for i, f := range spec.Families {
		countResult(f, outcomes[i].err)
	}
	return outcomes
}

func familyWords(fs []corev1.IPFamily) string {
	var words []string
	for _, f := range fs {
		if f == corev1.IPv6Protocol {
			words = append(words, "AAAA")
		} else {
			words = append(words, "A")
		}
	}
	return strings.Join(words, " or ")
}

// changed reports whether the reconciler needs to look again: the set of
// addresses, the first-answer flag, or the failure reason differ. A
// refresh that only moves expiry times is not a change.
func changed(a, b State) bool {
	if a.Resolved != b.Resolved || a.Omitted != b.Omitted || !slices.Equal(a.Addrs(), b.Addrs()) {
		return true
	}
	return (a.Err == nil) != (b.Err == nil) || (a.Err != nil && a.Err.Reason != b.Err.Reason)
}

func errMessage(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Message
}

// keyNamespace groups the work queue's items by the owner's namespace, so
// that the workers are shared fairly between namespaces.
func keyNamespace(k key) string { return k.owner.Namespace }
