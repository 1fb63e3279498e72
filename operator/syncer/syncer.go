package syncer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

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
	Log           logr.Logger
	// Recorder, if set, gets a Warning Event for each skipped Service.
	Recorder record.EventRecorder
	// DryRun, if set, receives each restore input instead of the kernel.
	DryRun io.Writer
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
}

// Syncer keeps iptables in line with a ChangeTracker.
type Syncer struct {
	changes  *ChangeTracker
	runner   restore.Runner
	opts     Options
	families []*family
	// LastSync describes the last successful sync (for tests and logs).
	LastSync SyncStats
}

// SyncStats describes one sync of one family.
type SyncStats struct {
	Full          bool
	ChainsWritten int
	ChainsDeleted int
	Rules         int
	Bytes         int
}

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
	s := &Syncer{changes: changes, runner: runner, opts: opts}
	for _, cfg := range opts.Families {
		r, err := render.NewRenderer(cfg)
		if err != nil {
			return nil, err
		}
		s.families = append(s.families, &family{ipv6: cfg.IPv6, renderer: r, rendered: map[types.NamespacedName][]*render.ServiceRules{}})
	}
	registerMetrics()
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
		if err := s.syncFamily(ctx, f, snap, full); err != nil {
			f.applied = nil
			errs = append(errs, err)
		}
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
		defer func() {
			if !render.SameDispatch(old, f.rendered[nn]) {
				dispatchChanged = true
			}
			changes = append(changes, change{old, f.rendered[nn]})
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
			out = append(out, f.renderer.Service(&ports[i], Endpoints(&ports[i], snap.slices[nn], f.ipv6)))
		}
		f.rendered[nn] = out
	}
	for nn := range snap.dirty {
		refresh(nn)
	}

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
		// The dispatch entries are sorted by address in Assemble, so the
		// order of services here does not change the output.
		all := make([]*render.ServiceRules, 0, len(f.rendered))
		for _, rs := range f.rendered {
			all = append(all, rs...)
		}
		desired = f.renderer.Assemble(all)
	}

	var tx *rules.Transaction
	if full {
		tx = desired.Full()
		if s.opts.DryRun == nil {
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
		}
	} else {
		tx = desired.Diff(f.applied)
	}
	stats := SyncStats{Full: full, ChainsWritten: len(tx.Written()), ChainsDeleted: len(tx.Deleted()), Rules: tx.Rules()}
	if tx.Empty() {
		f.applied = desired
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
			return fmt.Errorf("%s %s sync: %w", fam, kind, err)
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

// canaryOK reports whether every family's canary chains still exist.
func (s *Syncer) canaryOK(ctx context.Context) bool {
	if s.opts.DryRun != nil {
		return true
	}
	for _, f := range s.families {
		if f.applied == nil {
			continue
		}
		for _, table := range rules.Tables {
			ok, err := s.runner.ChainExists(ctx, f.ipv6, table, f.renderer.Names().Canary())
			if err != nil {
				s.opts.Log.Error(err, "Canary check failed")
				continue
			}
			if !ok {
				s.opts.Log.Info("Canary chain gone: the table was flushed, resyncing everything", "family", familyName(f.ipv6), "table", table)
				canaryResyncs.Inc()
				return false
			}
		}
	}
	return true
}

// Run syncs until ctx ends: after changes (at most once per
// MinSyncPeriod), fully every SyncPeriod, fully when a canary vanished,
// and again (fully) after a failure.
func (s *Syncer) Run(ctx context.Context) error {
	full, pending := true, true
	var last time.Time
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
		if wait := time.Until(last.Add(s.opts.MinSyncPeriod)); wait > 0 {
			wake.Reset(wait)
			continue
		}
		last = time.Now()
		if err := s.Sync(ctx, full); err != nil {
			s.opts.Log.Error(err, "Sync failed; retrying with a full sync", "after", s.opts.MinSyncPeriod)
			full = true
			wake.Reset(s.opts.MinSyncPeriod)
			continue
		}
		full, pending = false, false
	}
}
