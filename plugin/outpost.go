// Package outpost is a CoreDNS plugin that answers cluster DNS for Kubernetes
// Services (schema 1.1.0): a drop-in replacement for the service half of
// CoreDNS' kubernetes plugin that gives the same answers from a smaller,
// query-shaped index.
//
// The files follow CoreDNS' layout: setup.go parses the Corefile block,
// controller.go watches the API, object.go shrinks API objects, index.go
// holds them keyed by what queries ask, lookup.go decides what a name
// resolves to, answer.go/reverse.go/ns.go build the records, handler.go
// serves queries, snapshot.go persists the index across restarts.
package outpost

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

const pluginName = "outpost"

var log = clog.NewWithPlugin(pluginName)

// Outpost is the plugin: its configuration and its index.
type Outpost struct {
	Next plugin.Handler
	// Zones are the zones answered, forward and reverse, normalized.
	Zones []string
	Fall  fall.F

	primaryZone        int                 // index in Zones of the first forward zone
	namespaces         map[string]struct{} // empty: all namespaces
	labelSelector      *meta.LabelSelector
	ttl                uint32
	podNames           bool // endpoint_pod_names
	noEndpoints        bool
	ignoreEmptyService bool
	startupTimeout     time.Duration
	snapshotPath       string
	snapshotInterval   time.Duration
	snapshotMaxAge     time.Duration // 0: a snapshot is served whatever its age
	snapshotExpiry     *time.Timer   // ends a loaded snapshot's life at max-age

	// How to reach the API server: a kubeconfig, or endpoint + tls, or the
	// in-cluster configuration.
	clientConfig clientcmd.ClientConfig
	endpoint     string
	tlsCert      string
	tlsKey       string
	tlsCA        string

	idx      *index
	localIPs []net.IP
	upstream Upstreamer
	ctrl     *controller

	// informersSynced is set once every informer has listed; fromSnapshot
	// once a snapshot was loaded at start. Either lets the plugin answer
	// NXDOMAIN (and report ready). snapshotExpired is set when the loaded
	// snapshot outlived max-age before the informers synced: nothing in the
	// index is served then, as its data is the snapshot's.
	informersSynced atomic.Bool
	fromSnapshot    atomic.Bool
	snapshotExpired atomic.Bool
}

// New returns a plugin for zones with the defaults of the Corefile syntax.
func New(zones []string) *Outpost {
	return &Outpost{
		Zones:            zones,
		namespaces:       map[string]struct{}{},
		ttl:              defaultTTL,
		startupTimeout:   defaultStartupTimeout,
		snapshotInterval: defaultSnapshotInterval,
		idx:              newIndex(),
	}
}

const (
	defaultTTL              = 5
	defaultStartupTimeout   = 5 * time.Second
	defaultSnapshotInterval = 10 * time.Second
)

// synced reports whether the index holds a complete view: from the API or,
// until the API answers, from a snapshot.
func (o *Outpost) synced() bool { return o.informersSynced.Load() || o.fromSnapshot.Load() }
