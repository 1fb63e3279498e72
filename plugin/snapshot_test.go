package outpost

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The entries of validSnapshot, a snapshot file as written.
const (
	validService   = `{"name":"web","namespace":"ns","clusterIPs":["10.96.0.1"],"ports":[{"name":"http","protocol":"TCP","port":80}]}`
	validSlice     = `{"name":"web-abc","namespace":"ns","service":"web","ports":[{"name":"http","protocol":"TCP","port":8080}],"endpoints":[{"ip":"198.51.100.1"}]}`
	validNamespace = `"ns"`
)

var validSnapshot = snapshotJSON(validService, validSlice, validNamespace)

func snapshotJSON(services, slices, namespaces string) string {
	return fmt.Sprintf(`{"version":1,"written":"2026-11-23T10:00:00Z","services":[%s],"endpointSlices":[%s],"namespaces":[%s]}`, services, slices, namespaces)
}

var snapshotTime = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// TestDecodeSnapshotKeepsTheValidEntries: entries that are null, of the
// wrong type, or out of what the API server accepts are skipped one by one;
// the rest of the file is served.
func TestDecodeSnapshotKeepsTheValidEntries(t *testing.T) {
	for _, tc := range []struct {
		name, services, slices, namespaces string
		skipped                            string // in the first skip reason
	}{
		{name: "null service", services: `null`, skipped: "services[1]: null"},
		{name: "null slice", slices: `null`, skipped: "endpointSlices[1]: null"},
		{name: "null namespace", namespaces: `null`, skipped: "namespaces[1]: null"},
		{name: "service of the wrong type", services: `"web"`, skipped: "services[1]"},
		{name: "name of the wrong type", services: `{"name":5,"namespace":"ns"}`, skipped: "services[1]"},
		{name: "port out of int32", services: `{"name":"x","namespace":"ns","ports":[{"port":99999999999}]}`, skipped: "services[1]"},
		{name: "port out of range", services: `{"name":"x","namespace":"ns","ports":[{"port":70000}]}`, skipped: "port 70000 out of range"},
		{name: "empty name", services: `{"namespace":"ns"}`, skipped: `name ""`},
		{name: "huge name", services: `{"name":"` + strings.Repeat("a", 100000) + `","namespace":"ns"}`, skipped: "name"},
		{name: "bad namespace", services: `{"name":"x","namespace":"No/Such"}`, skipped: "namespace"},
		{name: "three clusterIPs", services: `{"name":"x","namespace":"ns","clusterIPs":["10.0.0.1","10.0.0.2","10.0.0.3"]}`, skipped: "3 clusterIPs"},
		{name: "clusterIP not an IP", services: `{"name":"x","namespace":"ns","clusterIPs":["10.0.0.300"]}`, skipped: "clusterIP"},
		{name: "externalName not a name", services: `{"name":"x","namespace":"ns","isExternal":true,"externalName":"a..b"}`, skipped: "externalName"},
		{name: "protocol", services: `{"name":"x","namespace":"ns","ports":[{"protocol":"ICMP","port":1}]}`, skipped: "protocol"},
		{name: "endpoint IP", slices: `{"name":"x","namespace":"ns","service":"web","endpoints":[{"ip":"nope"}]}`, skipped: "endpoints[0]: ip"},
		{name: "endpoint hostname", slices: `{"name":"x","namespace":"ns","service":"web","endpoints":[{"ip":"198.51.100.9","hostname":"a.b"}]}`, skipped: "hostname"},
		{name: "slice service", slices: `{"name":"x","namespace":"ns","service":"-","endpoints":[]}`, skipped: `service "-"`},
		{name: "namespace of the wrong type", namespaces: `{}`, skipped: "namespaces[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with := func(valid, extra string) string {
				if extra == "" {
					return valid
				}
				return valid + "," + extra
			}
			file := snapshotJSON(with(validService, tc.services), with(validSlice, tc.slices), with(validNamespace, tc.namespaces))
			s, err := decodeSnapshot([]byte(file), snapshotTime, 0)
			if err != nil {
				t.Fatalf("whole file rejected for one bad entry: %v", err)
			}
			if len(s.skipped) != 1 || !strings.Contains(s.skipped[0], tc.skipped) {
				t.Errorf("skipped %q, want one naming %q", s.skipped, tc.skipped)
			}
			if len(s.services) != 1 || len(s.slices) != 1 || len(s.namespaces) != 1 {
				t.Errorf("valid entries lost: %d services, %d slices, %d namespaces", len(s.services), len(s.slices), len(s.namespaces))
			}
		})
	}
}

// TestDecodeSnapshotRejectsWhatIsNoSnapshot: a truncated, corrupt,
// foreign or stale file is an error, never a panic or a partial index.
func TestDecodeSnapshotRejectsWhatIsNoSnapshot(t *testing.T) {
	cases := map[string]struct {
		file   string
		maxAge time.Duration
		want   string
	}{
		"empty":                  {"", 0, "not a snapshot"},
		"not JSON":               {"\x00\x01garbage", 0, "not a snapshot"},
		"null":                   {"null", 0, "version 0"},
		"services not a list":    {`{"version":1,"services":{}}`, 0, "not a snapshot"},
		"version a string":       {`{"version":"1"}`, 0, "not a snapshot"},
		"huge version":           {`{"version":1e300}`, 0, "not a snapshot"},
		"other version":          {`{"version":2}`, 0, "version 2"},
		"written not a time":     {`{"version":1,"written":"yesterday"}`, 0, "not a snapshot"},
		"older than max-age":     {validSnapshot, time.Hour - time.Second, "more than max-age"},
		"no time with max-age":   {`{"version":1}`, time.Hour, "no written time"},
		"in the future, max-age": {strings.Replace(validSnapshot, "2026-11-23", "2126-11-23", 1), time.Hour, "in the future"},
		"written in the year 1":  {strings.Replace(validSnapshot, "2026-11-23", "0001-01-02", 1), time.Hour, "more than max-age"},
	}
	for i := 1; i < len(validSnapshot); i += 7 {
		cases[fmt.Sprintf("truncated at %d", i)] = struct {
			file   string
			maxAge time.Duration
			want   string
		}{validSnapshot[:i], 0, "not a snapshot"}
	}
	now := snapshotTime.Add(time.Hour)
	for name, tc := range cases {
		s, err := decodeSnapshot([]byte(tc.file), now, tc.maxAge)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v (snapshot %v), want an error naming %q", name, err, s, tc.want)
		}
	}
	if _, err := decodeSnapshot([]byte(validSnapshot), now, time.Hour); err != nil {
		t.Errorf("a snapshot exactly max-age old: %v", err)
	}
}

// TestBadSnapshotIsIgnored: CoreDNS starts with a corrupt snapshot as it
// would without one: it waits for the API (SERVFAIL for unknown names) and
// does not report ready.
func TestBadSnapshotIsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := os.WriteFile(path, []byte(validSnapshot[:len(validSnapshot)/2]), 0o600); err != nil {
		t.Fatal(err)
	}
	o := New([]string{"cluster.local."})
	o.snapshotPath = path
	o.loadSnapshot()
	if o.Ready() {
		t.Error("ready after a corrupt snapshot")
	}
	if err := hasAnswer(t, o, "web.ns.svc.cluster.local.", dns.TypeA, dns.RcodeServerFailure); err != nil {
		t.Error(err)
	}
}

// TestSnapshotServedUntilMaxAge: a snapshot is served while younger than
// max-age; past it, while the API has still not answered, nothing of it is
// (SERVFAIL, not ready); once the API answers, the live data is.
func TestSnapshotServedUntilMaxAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	const maxAge = time.Hour
	written := time.Now().Add(-maxAge + 500*time.Millisecond).UTC().Format(time.RFC3339Nano)
	if err := os.WriteFile(path, []byte(strings.Replace(validSnapshot, "2026-11-23T10:00:00Z", written, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	o := New([]string{"cluster.local."})
	o.snapshotPath, o.snapshotMaxAge = path, maxAge
	o.ctrl = &controller{o: o, stopCh: make(chan struct{})}
	o.loadSnapshot()
	t.Cleanup(func() { o.stop() })
	if err := hasAnswer(t, o, "web.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "web.ns.svc.cluster.local. 5 IN A 10.96.0.1"); err != nil {
		t.Fatalf("within max-age: %v", err)
	}
	waitFor(t, func() error { return hasAnswer(t, o, "web.ns.svc.cluster.local.", dns.TypeA, dns.RcodeServerFailure) })
	if o.Ready() {
		t.Error("ready with an expired snapshot")
	}
	o.informersSynced.Store(true) // what waitForSync does
	if err := hasAnswer(t, o, "web.ns.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, "web.ns.svc.cluster.local. 5 IN A 10.96.0.1"); err != nil {
		t.Errorf("after the sync: %v", err)
	}
}

// TestSnapshotWriterMissesNoChange: every change is written, also one in
// the same second as the previous write, and namespace changes (which do
// not move the SOA serial).
func TestSnapshotWriterMissesNoChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	o := New([]string{"cluster.local."})
	o.snapshotPath, o.snapshotInterval = path, time.Millisecond
	o.informersSynced.Store(true)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { o.writeSnapshotsUntil(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done })

	written := func(want func(*snapshot) bool, what string) {
		t.Helper()
		waitFor(t, func() error {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s, err := decodeSnapshot(data, time.Now(), 0)
			if err != nil {
				return err
			}
			if !want(s) {
				return errors.New("snapshot never had " + what)
			}
			return nil
		})
	}
	has := func(name string) func(*snapshot) bool {
		return func(s *snapshot) bool {
			for _, v := range s.services {
				if v.Name == name {
					return true
				}
			}
			return false
		}
	}
	o.idx.setService(svc("first", "ns", []string{"10.96.0.1"}, httpPort))
	written(has("first"), "the first Service")
	o.idx.setService(svc("second", "ns", []string{"10.96.0.2"}, httpPort))
	written(has("second"), "a Service added right after a write")
	o.idx.setNamespace("ns")
	written(func(s *snapshot) bool { return len(s.namespaces) == 1 }, "a new namespace")
	o.idx.deleteNamespace("ns")
	written(func(s *snapshot) bool { return len(s.namespaces) == 0 }, "a namespace deletion")
}

// TestSnapshotNotRewrittenFromItself: stopping a CoreDNS that has served a
// snapshot but never reached the API leaves the file as it was, so that its
// age keeps counting against max-age.
func TestSnapshotNotRewrittenFromItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshot")
	if err := os.WriteFile(path, []byte(validSnapshot), 0o600); err != nil {
		t.Fatal(err)
	}
	o := New([]string{"cluster.local."})
	o.snapshotPath = path
	o.ctrl = &controller{o: o, stopCh: make(chan struct{})}
	o.loadSnapshot()
	if !o.Ready() {
		t.Fatal("snapshot not loaded")
	}
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != validSnapshot {
		t.Errorf("snapshot rewritten on stop (err %v):\n%s", err, data)
	}
}

// TestWriteFileAtomicLeavesNoTemporaryFile: the written file replaces the
// old one whole, and nothing else stays in the directory.
func TestWriteFileAtomicLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "snapshot")
	for _, content := range []string{"old", "new"} {
		if err := writeFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); len(entries) != 1 || string(data) != "new" {
		t.Errorf("directory holds %v, snapshot %q", entries, data)
	}
	if err := writeFileAtomic(filepath.Join(dir, "missing", "snapshot"), nil); err == nil {
		t.Error("no error writing into a missing directory")
	}
}
