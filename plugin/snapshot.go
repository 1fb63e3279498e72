package outpost

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	"k8s.io/apimachinery/pkg/util/validation"
)

// A snapshot is the index written to disk, so that a CoreDNS restarted while
// the API server is unreachable still answers with the last known records.
// It is written atomically (temporary file, fsync, rename, fsync of the
// directory) when the index changed, every snapshotInterval, and on
// shutdown. Reading one trusts nothing in it: the file may be truncated by a
// full disk, corrupted, or edited by hand. See the README's "Snapshots".

type snapshotFile struct {
	Version    int              `json:"version"`
	Written    time.Time        `json:"written"`
	Services   []*Service       `json:"services"`
	Slices     []*EndpointSlice `json:"endpointSlices"`
	Namespaces []string         `json:"namespaces"`
}

// snapshotEntries is snapshotFile as read: each entry is decoded on its
// own, so that one bad entry costs only itself.
type snapshotEntries struct {
	Version    int               `json:"version"`
	Written    time.Time         `json:"written"`
	Services   []json.RawMessage `json:"services"`
	Slices     []json.RawMessage `json:"endpointSlices"`
	Namespaces []json.RawMessage `json:"namespaces"`
}

const snapshotVersion = 1

// snapshot is what decodeSnapshot returns: the entries fit to serve, and
// why the others were skipped.
type snapshot struct {
	written    time.Time
	services   []*Service
	slices     []*EndpointSlice
	namespaces []string
	skipped    []string
}

// errStaleSnapshot marks a snapshot older than max-age.
var errStaleSnapshot = errors.New("stale")

// decodeSnapshot reads a snapshot file. A file that is not a snapshot of
// this version (truncated, not JSON, wrong types at the top) is an error;
// so is one older than maxAge (0: no limit). Entries that are null, of the
// wrong types or that no API server would have accepted are left out and
// listed in skipped.
func decodeSnapshot(data []byte, now time.Time, maxAge time.Duration) (*snapshot, error) {
	var f snapshotEntries
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a snapshot (truncated or corrupt?): %w", err)
	}
	if f.Version != snapshotVersion {
		return nil, fmt.Errorf("version %d, this CoreDNS reads version %d", f.Version, snapshotVersion)
	}
	if maxAge > 0 {
		switch age := now.Sub(f.Written); {
		case f.Written.IsZero():
			return nil, fmt.Errorf("%w: no written time, so its age against max-age %s is unknown", errStaleSnapshot, maxAge)
		case age > maxAge:
			return nil, fmt.Errorf("%w: written %s ago, more than max-age %s", errStaleSnapshot, age.Round(time.Second), maxAge)
		case age < -maxAge:
			return nil, fmt.Errorf("written %s in the future, so its age against max-age %s is unknown; is the clock right?", (-age).Round(time.Second), maxAge)
		}
	}
	s := &snapshot{written: f.Written}
	s.services = decodeEntries(f.Services, "services", func(v *Service) error { return v.check() }, &s.skipped)
	s.slices = decodeEntries(f.Slices, "endpointSlices", func(v *EndpointSlice) error { return v.check() }, &s.skipped)
	for _, ns := range decodeEntries(f.Namespaces, "namespaces", checkNamespace, &s.skipped) {
		s.namespaces = append(s.namespaces, intern(*ns))
	}
	for _, v := range s.services {
		v.Namespace = intern(v.Namespace)
		v.finish()
	}
	for _, v := range s.slices {
		v.Namespace = intern(v.Namespace)
		v.finish()
	}
	return s, nil
}

// decodeEntries decodes each raw entry of section and keeps those check
// accepts; skipped gets a line for each of the others.
func decodeEntries[T any](raw []json.RawMessage, section string, check func(*T) error, skipped *[]string) []*T {
	out := make([]*T, 0, len(raw))
	for i, r := range raw {
		v := new(T)
		err := json.Unmarshal(r, v)
		switch {
		case err != nil:
		case string(r) == "null":
			err = errors.New("null")
		default:
			err = check(v)
		}
		if err != nil {
			*skipped = append(*skipped, fmt.Sprintf("%s[%d]: %v", section, i, err))
			continue
		}
		out = append(out, v)
	}
	return out
}

// check rejects what the API server would not have stored, and what DNS
// answers could not carry.
func (s *Service) check() error {
	if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
		return fmt.Errorf("name %q: %s", s.Name, strings.Join(errs, "; "))
	}
	if err := checkNamespace(&s.Namespace); err != nil {
		return fmt.Errorf("service %q: %w", s.Name, err)
	}
	if len(s.ClusterIPs) > 2 {
		return fmt.Errorf("service %s/%s: %d clusterIPs, at most 2 (one per family)", s.Namespace, s.Name, len(s.ClusterIPs))
	}
	for _, ip := range s.ClusterIPs {
		if _, err := netip.ParseAddr(ip); err != nil && ip != "" && ip != "None" {
			return fmt.Errorf("service %s/%s: clusterIP %q is neither an IP, None nor empty", s.Namespace, s.Name, ip)
		}
	}
	if s.IsExternal {
		if _, ok := dns.IsDomainName(s.ExternalName); !ok || s.ExternalName == "" {
			return fmt.Errorf("service %s/%s: externalName %q is not a domain name", s.Namespace, s.Name, s.ExternalName)
		}
	}
	if err := checkPorts(s.Ports); err != nil {
		return fmt.Errorf("service %s/%s: %w", s.Namespace, s.Name, err)
	}
	return nil
}

func (e *EndpointSlice) check() error {
	if errs := validation.IsDNS1123Subdomain(e.Name); len(errs) > 0 {
		return fmt.Errorf("name %q: %s", e.Name, strings.Join(errs, "; "))
	}
	if err := checkNamespace(&e.Namespace); err != nil {
		return fmt.Errorf("endpointslice %q: %w", e.Name, err)
	}
	// Empty: a slice without the service-name label (see the README's Bugs).
	if errs := validation.IsDNS1035Label(e.Service); len(errs) > 0 && e.Service != "" {
		return fmt.Errorf("endpointslice %s/%s: service %q: %s", e.Namespace, e.Name, e.Service, strings.Join(errs, "; "))
	}
	if err := checkPorts(e.Ports); err != nil {
		return fmt.Errorf("endpointslice %s/%s: %w", e.Namespace, e.Name, err)
	}
	for i := range e.Endpoints {
		ep := &e.Endpoints[i]
		switch {
		case !ep.Addr.ok:
			return fmt.Errorf("endpointslice %s/%s: endpoints[%d]: ip is not an IP address", e.Namespace, e.Name, i)
		case ep.Hostname != "" && len(validation.IsDNS1123Label(ep.Hostname)) > 0:
			return fmt.Errorf("endpointslice %s/%s: endpoints[%d]: hostname %q is not a DNS label", e.Namespace, e.Name, i, ep.Hostname)
		case len(ep.TargetRefName) > validation.DNS1123LabelMaxLength:
			return fmt.Errorf("endpointslice %s/%s: endpoints[%d]: targetRef longer than a DNS label", e.Namespace, e.Name, i)
		}
	}
	return nil
}

func checkNamespace(ns *string) error {
	if errs := validation.IsDNS1123Label(*ns); len(errs) > 0 {
		return fmt.Errorf("namespace %q: %s", *ns, strings.Join(errs, "; "))
	}
	return nil
}

func checkPorts(ports []Port) error {
	for i, p := range ports {
		switch {
		case p.Port < -1 || p.Port > 65535: // -1: "no ports"
			return fmt.Errorf("ports[%d]: port %d out of range", i, p.Port)
		case len(p.Name) > validation.DNS1123LabelMaxLength:
			return fmt.Errorf("ports[%d]: name longer than a DNS label", i)
		case p.Protocol != "" && p.Protocol != "TCP" && p.Protocol != "UDP" && p.Protocol != "SCTP":
			return fmt.Errorf("ports[%d]: protocol %q, want TCP, UDP or SCTP", i, p.Protocol)
		}
	}
	return nil
}

// writeSnapshot writes the index and returns the generation written.
func (o *Outpost) writeSnapshot() (uint64, error) {
	services, slices, namespaces, generation := o.idx.contents()
	data, err := json.Marshal(snapshotFile{Version: snapshotVersion, Written: time.Now().UTC(), Services: services, Slices: slices, Namespaces: namespaces})
	if err == nil {
		err = writeFileAtomic(o.snapshotPath, data)
	}
	if err != nil {
		snapshotWrites.WithLabelValues("error").Inc()
		return 0, err
	}
	snapshotWrites.WithLabelValues("ok").Inc()
	return generation, nil
}

// writeFileAtomic replaces path with data so that a crash at any point
// leaves either the old file or the new one: the data is synced before the
// rename, and the directory after it, so that the rename itself survives a
// power loss.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write snapshot %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync snapshot %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close snapshot %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename snapshot into %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open snapshot directory %s to sync the rename: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync snapshot directory %s after the rename: %w", dir, err)
	}
	return nil
}

// loadSnapshot fills the index from the snapshot file, if there is one fit
// to serve. Whatever is wrong with the file is logged and counted, and
// leaves the index empty: the plugin then waits for the API as without a
// snapshot.
func (o *Outpost) loadSnapshot() {
	data, err := os.ReadFile(o.snapshotPath)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		snapshotLoads.WithLabelValues("unreadable").Inc()
		log.Warningf("snapshot %s not loaded: %v", o.snapshotPath, err)
		return
	}
	now := time.Now()
	s, err := decodeSnapshot(data, now, o.snapshotMaxAge)
	if err != nil {
		result := "invalid"
		if errors.Is(err, errStaleSnapshot) {
			result = "stale"
		}
		snapshotLoads.WithLabelValues(result).Inc()
		log.Warningf("snapshot %s not loaded: %v", o.snapshotPath, err)
		return
	}
	if len(s.skipped) > 0 {
		snapshotSkippedEntries.Add(float64(len(s.skipped)))
		const shown = 5
		log.Warningf("snapshot %s: skipped %d invalid entries: %s", o.snapshotPath, len(s.skipped), strings.Join(s.skipped[:min(shown, len(s.skipped))], "; "))
	}
	o.idx.replace(s.services, s.slices, s.namespaces)
	o.fromSnapshot.Store(true)
	snapshotLoads.WithLabelValues("loaded").Inc()
	snapshotLoaded.Set(float64(now.Unix()))
	log.Infof("loaded snapshot %s written %s: %d services, %d endpointslices", o.snapshotPath, s.written.Format(time.RFC3339), len(s.services), len(s.slices))
	if o.snapshotMaxAge > 0 {
		o.snapshotExpiry = time.AfterFunc(s.written.Add(o.snapshotMaxAge).Sub(now), o.expireSnapshot)
	}
}

// expireSnapshot stops serving the snapshot's data once it is older than
// max-age, unless the API has replaced it by then.
func (o *Outpost) expireSnapshot() {
	if o.informersSynced.Load() {
		return
	}
	o.snapshotExpired.Store(true)
	o.fromSnapshot.Store(false)
	log.Warningf("snapshot %s is older than max-age %s and the API server has not answered yet: SERVFAIL until it does", o.snapshotPath, o.snapshotMaxAge)
}

// writeSnapshotsUntil writes the snapshot every snapshotInterval while the
// index has changed since the last write and the plugin is synced with the
// API (a snapshot is never rewritten from itself).
func (o *Outpost) writeSnapshotsUntil(stop <-chan struct{}) {
	tick := time.NewTicker(o.snapshotInterval)
	defer tick.Stop()
	written, wroteOnce := uint64(0), false
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if !o.informersSynced.Load() || wroteOnce && o.idx.generation.Load() == written {
				continue
			}
			generation, err := o.writeSnapshot()
			if err != nil {
				log.Errorf("snapshot: %v", err)
				continue
			}
			written, wroteOnce = generation, true
		}
	}
}
