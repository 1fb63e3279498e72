package outpost

import (
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

func TestParse(t *testing.T) {
	c := caddy.NewTestController("dns", `outpost cluster.local 10.in-addr.arpa {
		kubeconfig /etc/kube.conf ctx
		namespaces a b
		labels app=web,tier in (front, back)
		ttl 30
		endpoint_pod_names
		noendpoints
		ignore empty_service
		fallthrough in-addr.arpa
		startup_timeout 2s
		snapshot /var/lib/outpost/index.json
	}`)
	o, err := parse(c)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := strings.Join(o.Zones, ","); got != "cluster.local.,10.in-addr.arpa." {
		t.Errorf("zones = %s", got)
	}
	if o.ttl != 30 || !o.podNames || !o.noEndpoints || !o.ignoreEmptyService || o.startupTimeout != 2*time.Second {
		t.Errorf("options not set: %+v", o)
	}
	if len(o.namespaces) != 2 || o.clientConfig == nil || o.snapshotPath != "/var/lib/outpost/index.json" {
		t.Errorf("namespaces/kubeconfig/snapshot not set: %+v", o)
	}
	if o.labelSelector == nil || len(o.labelSelector.MatchExpressions) != 1 || o.labelSelector.MatchLabels["app"] != "web" {
		t.Errorf("labels = %+v", o.labelSelector)
	}
	if !o.Fall.Through("1.0.0.10.in-addr.arpa.") || o.Fall.Through("x.cluster.local.") {
		t.Errorf("fallthrough zones wrong: %+v", o.Fall)
	}
}

func TestParseSnapshot(t *testing.T) {
	for _, tc := range []struct {
		args             string
		interval, maxAge time.Duration
	}{
		{"/s", defaultSnapshotInterval, 0},
		{"/s 30s", 30 * time.Second, 0},
		{"/s max-age 24h", defaultSnapshotInterval, 24 * time.Hour},
		{"/s 30s max-age 1h", 30 * time.Second, time.Hour},
	} {
		c := caddy.NewTestController("dns", "outpost cluster.local {\nsnapshot "+tc.args+"\n}")
		o, err := parse(c)
		if err != nil {
			t.Errorf("snapshot %s: %v", tc.args, err)
			continue
		}
		if o.snapshotPath != "/s" || o.snapshotInterval != tc.interval || o.snapshotMaxAge != tc.maxAge {
			t.Errorf("snapshot %s: path %q, interval %s, max-age %s; want /s, %s, %s", tc.args, o.snapshotPath, o.snapshotInterval, o.snapshotMaxAge, tc.interval, tc.maxAge)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c := caddy.NewTestController("dns", `outpost`)
	c.ServerBlockKeys = []string{"cluster.local:53"}
	o, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if o.ttl != 5 || o.startupTimeout != 5*time.Second || o.Zones[0] != "cluster.local." {
		t.Errorf("defaults: ttl %d, startup_timeout %s, zones %v", o.ttl, o.startupTimeout, o.Zones)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		corefile, wantErr string
	}{
		{"outpost {\nttl 3601\n}", "ttl"},
		{"outpost {\nttl -1\n}", "ttl"},
		{"outpost {\nttl five\n}", "ttl"},
		{"outpost {\nttl\n}", "ttl"},
		{"outpost {\nkubeconfig\n}", "kubeconfig"},
		{"outpost {\nkubeconfig a b c\n}", "kubeconfig"},
		{"outpost {\nendpoint\n}", "endpoint"},
		{"outpost {\nendpoint ftp://x\n}", "endpoint"},
		{"outpost {\nendpoint https://x\n tls a b\n}", "tls"},
		{"outpost {\ntls a b c\n}", "tls needs endpoint"},
		{"outpost {\nnamespaces\n}", "namespaces"},
		{"outpost {\nlabels\n}", "labels"},
		{"outpost {\nlabels app in (a\n}", "labels"},
		{"outpost {\nendpoint_pod_names x\n}", "endpoint_pod_names"},
		{"outpost {\nnoendpoints x\n}", "noendpoints"},
		{"outpost {\nignore\n}", "ignore"},
		{"outpost {\nignore everything\n}", "ignore"},
		{"outpost {\nstartup_timeout\n}", "startup_timeout"},
		{"outpost {\nstartup_timeout soon\n}", "startup_timeout"},
		{"outpost {\nsnapshot\n}", "snapshot"},
		{"outpost {\nsnapshot a b\n}", "snapshot"},
		{"outpost {\nsnapshot a 1s 2\n}", "snapshot"},
		{"outpost {\nsnapshot max-age 1h\n}", "snapshot takes a file PATH"},
		{"outpost {\nsnapshot a max-age\n}", "snapshot"},
		{"outpost {\nsnapshot a max-age 0s\n}", "max-age must be a positive duration"},
		{"outpost {\nsnapshot a 1s max-age soon\n}", "max-age must be a positive duration"},
		{"outpost {\npods insecure\n}", "unknown property 'pods'"},
		{"outpost {\nkubeconfig /k\n endpoint https://x\n}", "mutually exclusive"},
		{"outpost 10.in-addr.arpa", "forward"},
		{"outpost\noutpost", "once"},
	} {
		c := caddy.NewTestController("dns", tc.corefile)
		c.ServerBlockKeys = []string{"cluster.local."}
		_, err := parse(c)
		if err == nil {
			t.Errorf("%q: no error, want one naming %q", tc.corefile, tc.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: error %q does not name %q", tc.corefile, err, tc.wantErr)
		}
	}
}
