package resolve

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

const (
	// floorTTL keeps a record with TTL 0 (or MinTTL 0) from turning into a
	// query loop.
	floorTTL = time.Second
	// maxRetry caps the back-off between attempts while a name fails, so a
	// recovery is noticed within a minute even with a long MaxTTL.
	maxRetry = time.Minute
)

// Spec says how to resolve the names of one owner.
type Spec struct {
	// Families to query: IPv4 (A) and/or IPv6 (AAAA). Empty means the API's
	// default.
	Families []corev1.IPFamily
	// MinTTL and MaxTTL clamp the record TTL; zero means the API's default.
	// MaxTTL is also the grace during which a failing name keeps its
	// last known addresses.
	MinTTL, MaxTTL time.Duration
	// RotationWindow keeps an address for this long after the last answer
	// that listed it (at most MaxTTL), so that a name whose server answers
	// with a rotating subset of its records publishes the whole set and
	// its EndpointSlices change only when the set does. Zero follows every
	// answer, so a DNS failover is followed within the TTL.
	RotationWindow time.Duration
}

// normalize fills defaults and checks the spec; errors name the API field.
func (s Spec) normalize() (Spec, error) {
	out := Spec{MinTTL: s.MinTTL, MaxTTL: s.MaxTTL, RotationWindow: s.RotationWindow}
	if out.MinTTL <= 0 {
		out.MinTTL = v1alpha1.DefaultMinTTL
	}
	if out.MaxTTL <= 0 {
		out.MaxTTL = max(v1alpha1.DefaultMaxTTL, out.MinTTL)
	}
	if out.MinTTL > out.MaxTTL {
		return Spec{}, fmt.Errorf("resolution: minTTL %s is greater than maxTTL %s", out.MinTTL, out.MaxTTL)
	}
	if out.RotationWindow < 0 || out.RotationWindow > out.MaxTTL {
		return Spec{}, fmt.Errorf("resolution.rotationWindow: %s must be between 0 and maxTTL %s", out.RotationWindow, out.MaxTTL)
	}
	for _, f := range s.Families {
		if _, err := QType(f); err != nil {
			return Spec{}, fmt.Errorf("resolution.%w", err)
		}
		if !slices.Contains(out.Families, f) {
			out.Families = append(out.Families, f)
		}
	}
	if len(out.Families) == 0 {
		out.Families = []corev1.IPFamily{corev1.IPFamily(v1alpha1.DefaultIPFamily)}
	}
	slices.Sort(out.Families) // IPv4 before IPv6
	return out, nil
}

// clampTTL is how long an answer is trusted.
func (s Spec) clampTTL(ttl time.Duration) time.Duration {
	return max(min(max(ttl, s.MinTTL), s.MaxTTL), floorTTL)
}

// retryAfter is the back-off after the n-th consecutive failed attempt
// (n >= 1): MinTTL, doubling, capped at min(MaxTTL, maxRetry) but never
// below MinTTL.
func (s Spec) retryAfter(n int) time.Duration {
	limit := max(min(s.MaxTTL, maxRetry), s.MinTTL, floorTTL)
	d := max(s.MinTTL, floorTTL)
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// jittered shortens d by a random fraction in [0, jitter) so that names
// with equal TTLs spread out and a refresh never comes after the TTL.
// random returns a value in [0, 1).
func jittered(d time.Duration, jitter float64, random func() float64) time.Duration {
	return d - time.Duration(float64(d)*jitter*random())
}

// outcome is the result of one resolution attempt for one family.
type outcome struct {
	answer Answer
	// omitted counts the answer's records left out by MaxRecordsPerAnswer.
	omitted int
	err     *Error
}

// familyState is what the Refresher knows about one name in one family.
type familyState struct {
	addrs     []netip.Addr
	omitted   int       // records of the last good answer left out by MaxRecordsPerAnswer
	expires   time.Time // success: when the answer's clamped TTL runs out; failure: when kept addrs are dropped
	confirmed time.Time // when an answer last listed addrs
	// seen is when an answer last listed each of addrs: addrs are the
	// addresses seen within the rotation window.
	seen         map[netip.Addr]time.Time
	err          *Error
	failingSince time.Time
	failures     int
	// keepUntil, when set, is when addrs are dropped if the name fails
	// from now on. It is zero after an answer (the grace is one MaxTTL from
	// the first failure) and set for a state restored from what an earlier
	// run published, so a restart never extends the grace.
	keepUntil time.Time
}

// step folds one outcome into the state of a family at time now. It
// returns the new state and how long until the next attempt (before
// jitter). It does no I/O.
func step(prev familyState, o outcome, spec Spec, now time.Time) (familyState, time.Duration) {
	if o.err == nil {
		ttl := spec.clampTTL(o.answer.TTL)
		seen := recentlySeen(prev.seen, o.answer.Addrs, now, spec.RotationWindow)
		return familyState{addrs: sortedAddrs(seen), seen: seen, omitted: o.omitted, expires: now.Add(ttl), confirmed: now}, ttl
	}
	next := familyState{
		addrs:        prev.addrs,
		seen:         prev.seen,
		omitted:      prev.omitted,
		confirmed:    prev.confirmed,
		err:          o.err,
		failingSince: prev.failingSince,
		failures:     prev.failures + 1,
		keepUntil:    prev.keepUntil,
	}
	if next.failingSince.IsZero() {
		next.failingSince = now
	}
	if next.keepUntil.IsZero() {
		next.keepUntil = next.failingSince.Add(spec.MaxTTL)
	}
	retry := spec.retryAfter(next.failures)
	if len(next.addrs) > 0 {
		dropAt := next.keepUntil
		if !now.Before(dropAt) {
			next.addrs, next.seen, next.confirmed = nil, nil, time.Time{}
		} else {
			next.expires = dropAt
			// Come back in time to drop the addresses when the grace ends.
			retry = min(retry, dropAt.Sub(now))
		}
	}
	return next, retry
}

// recentlySeen is seen with the addresses of an answer at now added and
// those last seen window ago or earlier removed (all of them with a zero
// window: the answer replaces the set).
func recentlySeen(seen map[netip.Addr]time.Time, answer []netip.Addr, now time.Time, window time.Duration) map[netip.Addr]time.Time {
	out := make(map[netip.Addr]time.Time, len(seen)+len(answer))
	for a, t := range seen {
		if now.Sub(t) < window {
			out[a] = t
		}
	}
	for _, a := range answer {
		out[a] = now
	}
	return out
}

// sortedAddrs are the addresses of seen, sorted, IPv4 first.
func sortedAddrs(seen map[netip.Addr]time.Time) []netip.Addr {
	return slices.SortedFunc(maps.Keys(seen), netip.Addr.Compare)
}

// keepSmallest keeps the max smallest of the sorted addrs (all of them when
// max is not positive) and says how many it left out. The smallest, not the
// first of the answer, so that a server rotating its records does not make
// the published set churn.
func keepSmallest(addrs []netip.Addr, max int) (kept []netip.Addr, omitted int) {
	if max <= 0 || len(addrs) <= max {
		return addrs, 0
	}
	return addrs[:max], len(addrs) - max
}

// Known is an address an earlier run of the operator published for a name:
// a row of status.endpoints, or an EndpointSlice endpoint. A Refresher
// starts a name from its known addresses, so a restart neither drops them
// nor keeps them longer than the run that resolved them would have.
type Known struct {
	Name string
	Addr netip.Addr
	// Expires is the row's expires: when the answer's TTL ran out, or, if the
	// name was failing, when the addresses were to be dropped. Zero when
	// unknown.
	Expires time.Time
	// Confirmed is when an answer last listed Addr; zero when unknown (a row
	// written before the field existed, or an address found only in an
	// EndpointSlice).
	Confirmed time.Time
}

// restored is the state of one family of a name that starts from known
// addresses: it publishes them until an answer replaces them or, if the
// name fails, until one MaxTTL after they were last confirmed, or until
// the drop time an earlier failing run already announced, whichever is
// later. An address whose confirmation is unknown is taken as confirmed at
// its expiry (a row's answer was good until then), or now if that is
// unknown too. Addresses whose time has passed are not restored. ok is
// false when nothing is left.
func restored(known []Known, spec Spec, now time.Time) (fs familyState, ok bool) {
	for _, k := range known {
		confirmed := k.Confirmed
		if confirmed.IsZero() {
			confirmed = k.Expires
		}
		if confirmed.IsZero() {
			confirmed = now
		}
		keepUntil := confirmed.Add(spec.MaxTTL)
		if k.Expires.After(keepUntil) {
			keepUntil = k.Expires
		}
		if !now.Before(keepUntil) || slices.Contains(fs.addrs, k.Addr) {
			continue
		}
		fs.addrs = append(fs.addrs, k.Addr)
		if fs.seen == nil {
			fs.seen = map[netip.Addr]time.Time{}
		}
		// So that the first answer after a restart does not drop the
		// addresses a rotating server happens to leave out.
		fs.seen[k.Addr] = confirmed
		// One family has one expiry and one grace: take the most recent
		// confirmation, so no address outlives its own grace by much
		// and none is dropped before it.
		fs.expires = later(fs.expires, k.Expires)
		fs.confirmed = later(fs.confirmed, confirmed)
		fs.keepUntil = later(fs.keepUntil, keepUntil)
	}
	if len(fs.addrs) == 0 {
		return familyState{}, false
	}
	if fs.expires.IsZero() {
		fs.expires = fs.keepUntil
	}
	slices.SortFunc(fs.addrs, netip.Addr.Compare)
	return fs, true
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
