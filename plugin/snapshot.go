package outpost

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A snapshot is the index written to disk, so that a CoreDNS restarted while
// the API server is unreachable still answers with the last known records.
// It is written atomically (temporary file, fsync, rename) when the index
// changed, every snapshotInterval, and on shutdown.

type snapshotFile struct {
	Version    int              `json:"version"`
	Written    time.Time        `json:"written"`
	Services   []*Service       `json:"services"`
	Slices     []*EndpointSlice `json:"endpointSlices"`
	Namespaces []string         `json:"namespaces"`
}

const snapshotVersion = 1

func (o *Outpost) writeSnapshot() error {
	services, slices, namespaces := o.idx.contents()
	data, err := json.Marshal(snapshotFile{Version: snapshotVersion, Written: time.Now().UTC(), Services: services, Slices: slices, Namespaces: namespaces})
	if err != nil {
		snapshotWrites.WithLabelValues("error").Inc()
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := writeFileAtomic(o.snapshotPath, data); err != nil {
		snapshotWrites.WithLabelValues("error").Inc()
		return err
	}
	snapshotWrites.WithLabelValues("ok").Inc()
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
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
	return nil
}

// loadSnapshot fills the index from the snapshot file, if it exists.
func (o *Outpost) loadSnapshot() error {
	data, err := os.ReadFile(o.snapshotPath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var f snapshotFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if f.Version != snapshotVersion {
		return fmt.Errorf("version %d, want %d", f.Version, snapshotVersion)
	}
	for _, s := range f.Services {
		s.Namespace = intern(s.Namespace)
		s.finish()
	}
	for _, e := range f.Slices {
		e.Namespace = intern(e.Namespace)
		e.finish()
	}
	o.idx.replace(f.Services, f.Slices, f.Namespaces)
	o.fromSnapshot.Store(true)
	snapshotLoaded.Set(float64(time.Now().Unix()))
	log.Infof("loaded snapshot %s written %s: %d services, %d endpointslices", o.snapshotPath, f.Written.Format(time.RFC3339), len(f.Services), len(f.Slices))
	return nil
}

// writeSnapshotsUntil writes the snapshot every snapshotInterval while the
// index has changed since the last write and the plugin is synced.
func (o *Outpost) writeSnapshotsUntil(stop <-chan struct{}) {
	tick := time.NewTicker(o.snapshotInterval)
	defer tick.Stop()
	var written int64 = -1
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			modified := o.idx.modified.Load()
			if !o.informersSynced.Load() || modified == written {
				continue
			}
			if err := o.writeSnapshot(); err != nil {
				log.Errorf("snapshot: %v", err)
				continue
			}
			written = modified
		}
	}
}
