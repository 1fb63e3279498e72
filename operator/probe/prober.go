package probe

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/operator/internal/workpool"
)

// Options configure a Prober.
type Options struct {
	// Notify is called (from a worker, without locks held) with the owner
	// whose targets changed readiness or got their first result. It must
	// not block; notify.Source.Notify is a good fit.
	Notify func(owner types.NamespacedName)
	// Workers bounds the probes in flight; default 32.
	Workers int
	// Jitter spreads probes by ± this fraction of the interval; default 0.1.
	// Negative disables jitter.
	Jitter float64
	// Log defaults to the controller-runtime logger named "probe".
	Log logr.Logger
}

// Status is the health of one target.
type Status struct {
	// Ready is what to publish: true for a target without enough failures
	// yet, including one not probed yet, and for an address not tracked.
	Ready bool
	// Known is false until the target's first probe finished.
	Known bool
	// LastError is the last probe's failure ("" after a success).
	LastError string
	// LastProbe is when the last probe finished; Since is when Ready last
	// changed (or the target was added).
	LastProbe, Since time.Time
}

type key struct {
	owner types.NamespacedName
	addr  netip.Addr
}

type ownerState struct {
	spec    Spec
	checker *checker
	targets map[netip.Addr]*target
}

type target struct {
	t      Target
	health health
	due    time.Time
}

// Prober runs health checks for many owners. Create it with NewProber and
// add it to the manager; Ensure, Forget and Status are safe for concurrent
// use and may be called before Start.
type Prober struct {
	opts  Options
	queue workqueue.TypedDelayingInterface[key]

	mu      sync.Mutex
	owners  map[types.NamespacedName]*ownerState
	started bool
}

// NewProber returns a Prober; it probes nothing until Start.
func NewProber(opts Options) *Prober {
	if opts.Workers <= 0 {
		opts.Workers = 32
	}
	if opts.Jitter == 0 {
		opts.Jitter = 0.1
	}
	opts.Jitter = max(opts.Jitter, 0)
	if opts.Notify == nil {
		opts.Notify = func(types.NamespacedName) {}
	}
	if opts.Log.GetSink() == nil {
		opts.Log = ctrllog.Log.WithName("probe")
	}
	return &Prober{
		opts:   opts,
		queue:  workpool.NewFairDelayingQueue(keyNamespace),
		owners: map[types.NamespacedName]*ownerState{},
	}
}

// NeedLeaderElection: only the leader reconciles, so only it probes.
func (p *Prober) NeedLeaderElection() bool { return true }

// Start runs the workers until ctx ends. It implements manager.Runnable.
func (p *Prober) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("probe: Prober started twice")
	}
	p.started = true
	p.mu.Unlock()

	workpool.Run(ctx, p.opts.Workers, p.queue.ShutDown, p.processNext)
	return nil
}

// Ensure makes the Prober check exactly targets of owner with spec. New
// targets get their first probe within Jitter×Interval; targets no longer
// listed stop being probed. A changed check (any of Checks, or the
// timeout) keeps readiness but restarts the counting and probes at once.
// The error names the bad spec field.
func (p *Prober) Ensure(owner types.NamespacedName, targets []Target, spec Spec) error {
	spec, err := spec.normalize()
	if err != nil {
		return err
	}
	now := time.Now()
	type scheduled struct {
		k     key
		delay time.Duration
	}
	var schedule []scheduled

	p.mu.Lock()
	ow, ok := p.owners[owner]
	if !ok {
		ow = &ownerState{spec: spec, checker: newChecker(spec), targets: map[netip.Addr]*target{}}
		p.owners[owner] = ow
		ownerFailures(owner)
	}
	recheck := !sameCheck(ow.spec, spec)
	if recheck {
		ow.checker = newChecker(spec)
	}
	ow.spec = spec
	want := make(map[netip.Addr]Target, len(targets))
	for _, t := range targets {
		t.Addr = t.Addr.Unmap()
		want[t.Addr] = t
	}
	for addr := range ow.targets {
		if _, ok := want[addr]; !ok {
			delete(ow.targets, addr)
		}
	}
	for addr, t := range want {
		cur, ok := ow.targets[addr]
		switch {
		case !ok:
			d := time.Duration(float64(spec.Interval) * p.opts.Jitter * rand.Float64())
			ow.targets[addr] = &target{t: t, health: health{ready: !t.StartNotReady, since: now}, due: now.Add(d)}
			schedule = append(schedule, scheduled{key{owner, addr}, d})
		case recheck:
			cur.t.Host = t.Host
			cur.health.successes, cur.health.failures = 0, 0
			cur.due = now
			schedule = append(schedule, scheduled{key{owner, addr}, 0})
		default:
			cur.t.Host = t.Host
		}
	}
	if len(ow.targets) == 0 {
		delete(p.owners, owner)
		forgetOwner(owner)
	}
	p.countTargets()
	p.mu.Unlock()

	for _, s := range schedule {
		p.queue.AddAfter(s.k, s.delay)
	}
	return nil
}

// Forget stops every probe of owner.
func (p *Prober) Forget(owner types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.owners, owner)
	forgetOwner(owner)
	p.countTargets()
}

// Status returns the health of one target of owner. An address that is not
// tracked is reported Ready and not Known.
func (p *Prober) Status(owner types.NamespacedName, addr netip.Addr) Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ow, ok := p.owners[owner]; ok {
		if t, ok := ow.targets[addr.Unmap()]; ok {
			h := t.health
			return Status{Ready: h.ready, Known: h.known, LastError: h.lastError, LastProbe: h.lastProbe, Since: h.since}
		}
	}
	return Status{Ready: true}
}

// countTargets updates the gauge. Called with p.mu held.
func (p *Prober) countTargets() {
	n := 0
	for _, ow := range p.owners {
		n += len(ow.targets)
	}
	targetsTracked.Set(float64(n))
}

func (p *Prober) processNext(ctx context.Context) bool {
	k, shutdown := p.queue.Get()
	if shutdown {
		return false
	}
	defer p.queue.Done(k)

	p.mu.Lock()
	ow, ok := p.owners[k.owner]
	var tg *target
	if ok {
		tg, ok = ow.targets[k.addr]
	}
	if !ok {
		p.mu.Unlock()
		return true // gone
	}
	if wait := time.Until(tg.due); wait > 0 {
		// An early wake-up left by an earlier life of this key: the
		// delaying queue keeps only the earliest time per key, so the
		// real schedule may have been merged into this one. Put it back.
		p.mu.Unlock()
		p.queue.AddAfter(k, wait)
		return true
	}
	c, t := ow.checker, tg.t
	p.mu.Unlock()

	err := c.check(ctx, t)
	if ctx.Err() != nil {
		return false
	}

	p.mu.Lock()
	if cur, ok := p.owners[k.owner]; !ok || cur != ow || ow.targets[k.addr] != tg || ow.checker != c {
		// Forgotten or the check changed while probing; drop this result.
		p.mu.Unlock()
		return true
	}
	if err != nil {
		ownerFailures(k.owner).Inc()
	}
	before := tg.health.ready
	var notify bool
	tg.health, notify = advance(tg.health, err, ow.spec, time.Now())
	// Count from when the probe was due, not from when a worker got to it,
	// so queueing delays do not stretch the interval (a ticker's rate); a
	// probe that overran its slot is followed at once.
	next := tg.due.Add(nextDelay(ow.spec.Interval, p.opts.Jitter, rand.Float64))
	if now := time.Now(); next.Before(now) {
		next = now
	}
	tg.due = next
	after := tg.health
	p.mu.Unlock()

	p.queue.AddAfter(k, time.Until(next))
	if before != after.ready {
		transitions.WithLabelValues(readyLabel(after.ready)).Inc()
		p.opts.Log.Info("target readiness changed", "owner", k.owner, "address", k.addr,
			"ready", after.ready, "error", after.lastError)
	}
	if notify {
		p.opts.Notify(k.owner)
	}
	return true
}

func readyLabel(ready bool) string {
	if ready {
		return "Ready"
	}
	return "NotReady"
}

// keyNamespace groups the work queue's items by the owner's namespace, so
// that the workers are shared fairly between namespaces.
func keyNamespace(k key) string { return k.owner.Namespace }
