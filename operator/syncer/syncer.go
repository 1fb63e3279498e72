package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"

	"github.com/outpost-dev/outpost/operator/syncer/conntrack"
	"github.com/outpost-dev/outpost/operator/syncer/render"
	"github.com/outpost-dev/outpost/operator/syncer/restore"
	"github.com/outpost-dev/outpost/operator/syncer/rules"
)

// Options configures a Syncer.
type Options struct {
	// Families holds one render configuration per IP family to program.
	Families []render.Config
	// MinSyncPeriod bounds how often rules are rewritten (changes are
	// batched); SyncPeriod forces a full resync; CanaryPeriod is how often
	// the canary chains are checked.
	MinSyncPeriod time.Duration
	SyncPeriod    time.Duration
	CanaryPeriod  time.Duration
	// MaxRetryDelay caps the exponential backoff (from MinSyncPeriod,
	// doubling) between retries of a failed sync.
	MaxRetryDelay time.Duration
	Log           logr.Logger
	// Recorder, if set, gets a Warning Event for each skipped or refused
	// Service, and Events on the Node (NodeName) when syncing fails and
	// recovers.
	Recorder record.EventRecorder
	NodeName string
	// DryRun, if set, receives each restore input instead of the kernel.
	DryRun io.Writer
	// Conntrack, if set, deletes the UDP and SCTP conntrack entries that
	// changed endpoints left stale, after the rules are applied.
	Conntrack Conntrack
	// AfterSync, if set, runs after each successful sync of Run: the health
	// check node ports follow the endpoints the rules were written for.
	AfterSync func()
}

// Conntrack deletes the conntrack entries of one IP family that the
// targets call stale (conntrack.Netlink in production).
type Conntrack interface {
	DeleteStale(ipv6 bool, t conntrack.Targets) (int, error)
}

// family is the state of one IP family.
type family struct {
	ipv6     bool
	renderer *render.Renderer
	// rendered caches each Service's rules; only dirty Services are
	// re-rendered.
	rendered map[types.NamespacedName][]*render.ServiceRules
	// applied is the rule set the kernel holds, nil when unknown (startup,
	// after a failed restore): the next sync is then a full one.
	applied *rules.Ruleset
	// input is the last restore input, its memory reused by the next sync.
	input []byte
	// good holds, for each Service re-rendered since the last successful
	// restore (unconfirmed), the rules the kernel last accepted for it: a
	// Service whose new rules the kernel refuses falls back to them.
	good        map[types.NamespacedName][]*render.ServiceRules
	unconfirmed map[types.NamespacedName]bool
	// targets holds each Service's UDP/SCTP frontends and serving
	// endpoints as last rendered (known once every Service was rendered),
	// and staleFlows the frontends whose conntrack entries are to be
	// checked once the rules are applied.
	targets      map[types.NamespacedName]conntrack.Targets
	targetsKnown bool
	staleFlows   conntrack.Pending
	// triggers are the change times of this family's slices not yet in
	// the kernel: kept through failed syncs, observed once applied.
	triggers []time.Time
}

// Syncer keeps iptables in line with a ChangeTracker.
type Syncer struct {
	changes  *ChangeTracker
	runner   restore.Runner
	opts     Options
	families []*family
	// LastSync describes the last successful sync (for tests and logs).
	LastSync SyncStats
	// failing is set while Run's syncs fail (see Healthy).
	failing atomic.Bool
	// lastSuccess is the Unix time in nanoseconds of Run's last successful
	// sync, 0 before the first (see LastSuccess).
	lastSuccess atomic.Int64
}

// LastSuccess returns when a sync of Run last succeeded; zero before the
// first. The liveness probe (Healthz) fails once it is too old.
func (s *Syncer) LastSuccess() time.Time {
	if ns := s.lastSuccess.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Healthy reports whether the last sync of Run succeeded: the rules follow
// the API. A load balancer's health check (HealthServer) turns a node away
// while they do not, as kube-proxy's does.
func (s *Syncer) Healthy() bool { return !s.failing.Load() }

// SyncStats describes one sync of one family.
type SyncStats struct {
	Full          bool
	ChainsWritten int
	ChainsDeleted int
	Rules         int
	Bytes         int
}

// DefaultMaxRetryDelay caps the backoff between retries of a failed sync.
const DefaultMaxRetryDelay = 30 * time.Second

// New returns a Syncer.
func New(changes *ChangeTracker, runner restore.Runner, opts Options) (*Syncer, error) {
	if len(opts.Families) == 0 {
		return nil, errors.New("no IP family to program")
	}
	if opts.MinSyncPeriod <= 0 {
		opts.MinSyncPeriod = time.Second
	}
	if opts.SyncPeriod <= 0 {
		opts.SyncPeriod = time.Hour
	}
	if opts.CanaryPeriod <= 0 {
		opts.CanaryPeriod = 10 * time.Second
	}
	if opts.MaxRetryDelay <= 0 {
		opts.MaxRetryDelay = DefaultMaxRetryDelay
	}
	s := &Syncer{changes: changes, runner: runner, opts: opts}
	for _, cfg := range opts.Families {
		r, err := render.NewRenderer(cfg)
		if err != nil {
			return nil, err
		}
		s.families = append(s.families, &family{ipv6: cfg.IPv6, renderer: r,
			rendered:    map[types.NamespacedName][]*render.ServiceRules{},
			good:        map[types.NamespacedName][]*render.ServiceRules{},
			unconfirmed: map[types.NamespacedName]bool{},
			targets:     map[types.NamespacedName]conntrack.Targets{},
		})
	}
	registerMetrics()
	for _, f := range s.families {
		// At 0 from the start, so that rate() sees the first failure.
		for _, kind := range []string{"full", "partial"} {
			restoreFailures.WithLabelValues(familyName(f.ipv6), kind)
		}
	}
	return s, nil
}

// Sync brings every family up to date once. full rewrites every chain and
// deletes stale ones; otherwise only chains that changed are written. A
// failed family is retried as a full sync next time.
func (s *Syncer) Sync(ctx context.Context, full bool) error {
	all := false
	for _, f := range s.families {
		all = all || len(f.rendered) == 0 && f.applied == nil
	}
	snap := s.changes.take(all)
	var errs []error
	for _, f := range s.families {
		f.triggers = append(f.triggers, snap.triggersOf(f.ipv6)...)
		if err := s.syncFamily(ctx, f, snap, full); err != nil {
			f.applied = nil
			errs = append(errs, err)
			continue
		}
		observeProgrammed(familyName(f.ipv6), f.triggers, time.Now())
		f.triggers = f.triggers[:0]
	}
	return errors.Join(errs...)
}

func familyName(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func (s *Syncer) syncFamily(ctx context.Context, f *family, snap snapshot, full bool) error {
	start := time.Now()
	fam := familyName(f.ipv6)
	log := s.opts.Log.WithValues("family", fam)
	full = full || f.applied == nil

	// Re-render what changed (everything on the first sync).
	dispatchChanged := false
	type change struct{ old, new []*render.ServiceRules }
	changes := make([]change, 0, len(snap.dirty))
	refresh := func(nn types.NamespacedName) {
		old := f.rendered[nn]
		targets := conntrack.Targets{}
		defer func() {
			if !render.SameDispatch(old, f.rendered[nn]) {
				dispatchChanged = true
			}
			changes = append(changes, change{old, f.rendered[nn]})
			f.unconfirmed[nn] = true
			f.staleFlows.Update(f.targets[nn], targets, f.targetsKnown)
			if len(targets) > 0 {
				f.targets[nn] = targets
			} else {
				delete(f.targets, nn)
			}
		}()
		svc, ok := snap.services[nn]
		if !ok {
			delete(f.rendered, nn)
			return
		}
		ports, err := ServicePorts(svc, f.ipv6)
		if err != nil {
			// Never let one bad Service break the restore for all others.
			log.Error(err, "Skipping Service with an invalid address", "service", nn)
			servicesSkipped.Inc()
			if s.opts.Recorder != nil {
				s.opts.Recorder.Eventf(svc, v1.EventTypeWarning, "InvalidAddress", "outpost-syncer skips this Service: %v", err)
			}
			delete(f.rendered, nn)
			return
		}
		out := make([]*render.ServiceRules, 0, len(ports))
		for i := range ports {
			eps := Endpoints(&ports[i], snap.slices[nn], f.ipv6)
			out = append(out, f.renderer.Service(&ports[i], eps))
			targets.Add(&ports[i], eps)
		}
		f.rendered[nn] = out
	}
	for nn := range snap.dirty {
		refresh(nn)
	}
	f.targetsKnown = true

	var desired *rules.Ruleset
	if f.applied != nil && !dispatchChanged {
		// Only services' own chains changed: patch the applied set
		// instead of rebuilding the dispatch (O(changes), not O(services)).
		desired = f.applied.Clone()
		for _, c := range changes {
			for _, sr := range c.old {
				for _, ch := range sr.Chains {
					desired.Remove(ch.ChainRef)
				}
			}
			for _, sr := range c.new {
				for _, ch := range sr.Chains {
					desired.Add(ch)
				}
			}
		}
	} else {
		desired = f.renderer.Assemble(s.all(f, nil))
	}

	tx := s.transaction(ctx, f, desired, full, log)
	stats := SyncStats{Full: full, ChainsWritten: len(tx.Written()), ChainsDeleted: len(tx.Deleted()), Rules: tx.Rules()}
	if tx.Empty() {
		f.applied = desired
		s.confirm(f, log)
		return nil
	}
	f.input = tx.AppendTo(f.input[:0])
	stats.Bytes = len(f.input)
	kind := "partial"
	if full {
		kind = "full"
	}
	if s.opts.DryRun != nil {
		if _, err := s.opts.DryRun.Write(f.input); err != nil {
			return err
		}
	} else {
		if err := s.runner.Restore(ctx, f.ipv6, f.input); err != nil {
			restoreFailures.WithLabelValues(fam, kind).Inc()
			err = fmt.Errorf("%s %s sync: %w", fam, kind, err)
			if !full {
				// Retried as a full sync, which isolates refused Services.
				return err
			}
			refused, ok := s.isolate(ctx, f, log)
			if !ok {
				return err
			}
			s.reportRefused(f, refused, err, log)
			desired = f.renderer.Assemble(s.all(f, nil))
			tx = s.transaction(ctx, f, desired, true, log)
			f.input = tx.AppendTo(f.input[:0])
			stats = SyncStats{Full: true, ChainsWritten: len(tx.Written()), ChainsDeleted: len(tx.Deleted()), Rules: tx.Rules(), Bytes: len(f.input)}
			if err := s.runner.Restore(ctx, f.ipv6, f.input); err != nil {
				restoreFailures.WithLabelValues(fam, kind).Inc()
				return fmt.Errorf("%s full sync without the refused Services: %w", fam, err)
			}
		}
		if full {
			// The jumps from built-in chains are not ours to restore;
			// ensure them after our chains exist.
			for _, j := range f.renderer.Jumps() {
				if err := s.runner.EnsureJump(ctx, f.ipv6, j); err != nil {
					return err
				}
			}
		}
	}
	s.confirm(f, log)
	f.applied = desired
	s.LastSync = stats
	syncDuration.WithLabelValues(fam, kind).Observe(time.Since(start).Seconds())
	restoreBytes.WithLabelValues(fam, kind).Set(float64(stats.Bytes))
	rulesTotal.WithLabelValues(fam, "nat").Set(float64(desired.RuleCount(rules.NAT)))
	rulesTotal.WithLabelValues(fam, "filter").Set(float64(desired.RuleCount(rules.Filter)))
	log.V(1).Info("Synced rules", "full", full, "chainsWritten", stats.ChainsWritten, "chainsDeleted", stats.ChainsDeleted,
		"rules", stats.Rules, "bytes", stats.Bytes, "services", len(f.rendered), "elapsed", time.Since(start))
	return nil
}

// all returns every Service's rules, with the Services in withheld at the
// version the kernel last accepted. The dispatch entries are sorted by
// address in Assemble, so the order here does not change the output.
func (s *Syncer) all(f *family, withheld map[types.NamespacedName]bool) []*render.ServiceRules {
	out := make([]*render.ServiceRules, 0, len(f.rendered))
	for nn, rs := range f.rendered {
		if withheld[nn] {
			rs = f.good[nn]
		}
		out = append(out, rs...)
	}
	return out
}

// transaction is the restore input that makes the kernel hold desired:
// with full, every chain is rewritten and stale chains of ours are
// deleted; otherwise only the chains that changed since the last apply.
func (s *Syncer) transaction(ctx context.Context, f *family, desired *rules.Ruleset, full bool, log logr.Logger) *rules.Transaction {
	if !full {
		return desired.Diff(f.applied)
	}
	tx := desired.Full()
	if s.opts.DryRun != nil {
		return tx
	}
	names := f.renderer.Names()
	for _, table := range rules.Tables {
		existing, err := s.runner.Chains(ctx, f.ipv6, table)
		if err != nil {
			// Stale chains are harmless (nothing jumps to them);
			// keep going and delete them on a later full sync.
			log.Error(err, "Cannot list chains; stale chains stay until the next full sync", "table", table)
			continue
		}
		for _, c := range existing {
			if _, want := desired.Get(table, c); !want && names.Owns(c) {
				tx.Delete(rules.ChainRef{Table: table, Name: c})
			}
		}
	}
	return tx
}

// confirm records that the kernel holds every Service's rendered rules,
// then deletes the conntrack entries the applied changes left stale (only
// now: before, the old rules would NAT the next packet the old way again).
// A failed cleanup is retried after the next sync.
func (s *Syncer) confirm(f *family, log logr.Logger) {
	for nn := range f.unconfirmed {
		if rs, ok := f.rendered[nn]; ok {
			f.good[nn] = rs
		} else {
			delete(f.good, nn)
		}
	}
	clear(f.unconfirmed)
	if s.opts.Conntrack == nil || len(f.staleFlows.Targets) == 0 {
		return
	}
	fam := familyName(f.ipv6)
	n, err := s.opts.Conntrack.DeleteStale(f.ipv6, f.staleFlows.Targets)
	conntrackDeleted.WithLabelValues(fam).Add(float64(n))
	if err != nil {
		conntrackFailures.WithLabelValues(fam).Inc()
		log.Error(err, "Cannot delete stale conntrack entries; retrying after the next sync", "deleted", n)
		return
	}
	log.V(1).Info("Deleted stale conntrack entries", "entries", n, "frontends", len(f.staleFlows.Targets))
	f.staleFlows.Targets = nil
}

// isolate finds the Services whose new rules the kernel refuses after a
// full restore failed, by applying subsets for real: first every Service
// at the version last accepted (if that fails too, the fault is not a
// Service's and ok is false), then the changed Services in halves,
// keeping each half that applies and splitting each that does not. It
// costs about 2·r·log2(c) + 2 restores for r refused among c changed Services,
// and every restore it makes leaves the kernel with valid rules.
func (s *Syncer) isolate(ctx context.Context, f *family, log logr.Logger) (refused []types.NamespacedName, ok bool) {
	var changed []types.NamespacedName
	for nn := range f.unconfirmed {
		if _, ok := f.rendered[nn]; ok {
			changed = append(changed, nn)
		}
	}
	if len(changed) == 0 {
		return nil, false
	}
	slices.SortFunc(changed, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	withheld := make(map[types.NamespacedName]bool, len(changed))
	for _, nn := range changed {
		withheld[nn] = true
	}
	apply := func() error {
		tx := s.transaction(ctx, f, f.renderer.Assemble(s.all(f, withheld)), true, log)
		return s.runner.Restore(ctx, f.ipv6, tx.AppendTo(nil))
	}
	if err := apply(); err != nil {
		log.Info("The rules last accepted are refused too: not a Service's fault", "error", err.Error())
		return nil, false
	}
	// Every group is tried as a whole first, the first one too: a fault
	// that ended meanwhile (the lock freed, the tool fixed) must not be
	// blamed on a Service.
	var bisect func(group []types.NamespacedName)
	bisect = func(group []types.NamespacedName) {
		for _, nn := range group {
			delete(withheld, nn)
		}
		if apply() == nil {
			return
		}
		for _, nn := range group {
			withheld[nn] = true
		}
		if len(group) == 1 {
			refused = append(refused, group[0])
			return
		}
		half := len(group) / 2
		bisect(group[:half])
		bisect(group[half:])
	}
	bisect(changed)
	return refused, true
}

// reportRefused puts the refused Services back to the rules the kernel
// last accepted for them (none for a new Service) until they change again,
// and says so on each Service.
func (s *Syncer) reportRefused(f *family, refused []types.NamespacedName, cause error, log logr.Logger) {
	fam := familyName(f.ipv6)
	for _, nn := range refused {
		log.Error(cause, "The kernel refuses this Service's rules; keeping the rules it last accepted for it", "service", nn)
		servicesRefused.WithLabelValues(fam).Inc()
		if rs, ok := f.good[nn]; ok {
			f.rendered[nn] = rs
		} else {
			delete(f.rendered, nn)
		}
		delete(f.unconfirmed, nn)
		if s.opts.Recorder != nil {
			ref := &v1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: nn.Namespace, Name: nn.Name}
			s.opts.Recorder.Eventf(ref, v1.EventTypeWarning, "RulesRefused",
				"outpost-syncer: iptables-restore refuses this Service's %s rules; its previous rules stay until it changes: %v", fam, cause)
		}
	}
}

// canaryOK reports whether every family's canary chains and jumps from the
// built-in chains are still in place: a deleted canary chain means someone
// deleted our chains ("iptables -X", a firewall reload), a missing jump
// that someone flushed a table ("iptables -F" keeps the chains).
func (s *Syncer) canaryOK(ctx context.Context) bool {
	if s.opts.DryRun != nil {
		return true
	}
	for _, f := range s.families {
		if f.applied == nil {
			continue
		}
		fam := familyName(f.ipv6)
		for _, table := range rules.Tables {
			ok, err := s.runner.ChainExists(ctx, f.ipv6, table, f.renderer.Names().Canary())
			if err != nil {
				s.opts.Log.Error(err, "Canary check failed")
				continue
			}
			if !ok {
				s.opts.Log.Info("Canary chain gone: the table was flushed, resyncing everything", "family", fam, "table", table)
				canaryResyncs.Inc()
				return false
			}
		}
		// "iptables -F" empties every built-in chain of the table: the
		// first jump of each table tells, and checking one per table
		// keeps the alarm quick (each check is an iptables run).
		checked := map[rules.Table]bool{}
		for _, j := range f.renderer.Jumps() {
			if checked[j.Table] {
				continue
			}
			checked[j.Table] = true
			ok, err := s.runner.HasJump(ctx, f.ipv6, j)
			if err != nil {
				s.opts.Log.Error(err, "Canary check failed")
				continue
			}
			if !ok {
				s.opts.Log.Info("Canary chain gone or unreachable: a jump from a built-in chain is missing (the table was flushed), resyncing everything",
					"family", fam, "table", j.Table, "chain", j.From)
				canaryResyncs.Inc()
				return false
			}
		}
	}
	return true
}

// retryBackoff is the delay between retries of a failed sync: from
// MinSyncPeriod, doubling, capped at MaxRetryDelay, with 10% jitter so that
// the nodes of a cluster do not retry in step.
func (s *Syncer) retryBackoff() wait.Backoff {
	return wait.Backoff{Duration: s.opts.MinSyncPeriod, Factor: 2, Jitter: 0.1, Steps: math.MaxInt32, Cap: s.opts.MaxRetryDelay}
}

// nodeEvent records an Event on this node, where an operator looks for
// why its Services misbehave.
func (s *Syncer) nodeEvent(eventType, reason, format string, args ...any) {
	if s.opts.Recorder == nil || s.opts.NodeName == "" {
		return
	}
	// As kube-proxy: a Node's UID is its name in Events' references.
	ref := &v1.ObjectReference{Kind: "Node", Name: s.opts.NodeName, UID: types.UID(s.opts.NodeName)}
	s.opts.Recorder.Eventf(ref, eventType, reason, format, args...)
}

// Run syncs until ctx ends: after changes (at most once per
// MinSyncPeriod), fully every SyncPeriod, fully when a canary vanished,
// and after a failure fully again, with exponential backoff. The kernel
// keeps the last rules applied meanwhile (every restore is atomic), and
// nothing is cleaned up when ctx ends: a restarting syncer leaves no window
// without rules.
func (s *Syncer) Run(ctx context.Context) error {
	full, pending := true, true
	var notBefore time.Time
	failures, backoff := 0, s.retryBackoff()
	fullTicker := time.NewTicker(s.opts.SyncPeriod)
	defer fullTicker.Stop()
	canary := time.NewTicker(s.opts.CanaryPeriod)
	defer canary.Stop()
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.changes.Changed():
			pending = true
		case <-fullTicker.C:
			full, pending = true, true
		case <-canary.C:
			if !s.canaryOK(ctx) {
				full, pending = true, true
			}
		case <-wake.C:
		}
		if !pending {
			continue
		}
		if wait := time.Until(notBefore); wait > 0 {
			wake.Reset(wait)
			continue
		}
		start := time.Now()
		if err := s.Sync(ctx, full); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			s.failing.Store(true)
			consecutiveFailures.Set(float64(failures))
			delay := backoff.Step()
			s.opts.Log.Error(err, "Sync failed; the kernel keeps the rules last applied; retrying with a full sync",
				"consecutiveFailures", failures, "after", delay)
			s.nodeEvent(v1.EventTypeWarning, "SyncFailed",
				"outpost-syncer cannot apply rules (%d failures in a row, retrying in %s); the previous rules stay: %v", failures, delay.Round(time.Millisecond), err)
			full, notBefore = true, time.Now().Add(delay)
			wake.Reset(delay)
			continue
		}
		if failures > 0 {
			s.opts.Log.Info("Sync succeeded again", "after failures", failures)
			s.nodeEvent(v1.EventTypeNormal, "SyncRecovered", "outpost-syncer applies rules again after %d failed syncs", failures)
		}
		failures, backoff = 0, s.retryBackoff()
		s.failing.Store(false)
		consecutiveFailures.Set(0)
		lastSuccess.SetToCurrentTime()
		s.lastSuccess.Store(time.Now().UnixNano())
		if s.opts.AfterSync != nil {
			s.opts.AfterSync()
		}
		full, pending = false, false
		notBefore = start.Add(s.opts.MinSyncPeriod)
	}
}
