package outpost

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/coredns/coredns/coremain"
	api "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	meta "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// controller runs one list-watch per kind (Services, EndpointSlices unless
// noendpoints, Namespaces). Each shrinks objects on ingest (its transform)
// and applies every change to the index, which is the only copy kept: there
// is no informer store. The queue learns what the index holds through
// indexKeys, so that a relist still turns vanished objects into deletions.
type controller struct {
	o        *Outpost
	kinds    []*kindWatch
	gc       *listingGC
	stopCh   chan struct{}
	stopOnce sync.Once
	done     sync.WaitGroup
}

// kindWatch is one kind's list-watch: a reflector filling a queue, drained
// into the index. It is what cache.New builds, with the reflector's
// backoff set (cache.Config has no field for it).
type kindWatch struct {
	reflector *cache.Reflector
	queue     cache.Queue
	process   cache.PopProcessFunc
}

// watchBackoff paces list and watch retries while the API server is away.
// client-go's default doubles up to 30 s with as much jitter again, so an
// API server back after a 30 s outage could wait up to a minute for DNS to
// catch up; this one retries at most every 3 s. A retry against a
// server that is down costs it nothing; one that is up but busy gets a 429,
// which the reflector also paces with this backoff.
var watchBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Steps: 5, Cap: 2 * time.Second}

func newController(o *Outpost) (*controller, error) {
	cfg, err := o.restConfig()
	if err != nil {
		return nil, fmt.Errorf("API client configuration: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	c := &controller{o: o, stopCh: make(chan struct{}), gc: newListingGC()}

	selector := ""
	if o.labelSelector != nil {
		s, err := meta.LabelSelectorAsSelector(o.labelSelector)
		if err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		selector = s.String()
	}
	withSelector := func(opts *meta.ListOptions) { opts.LabelSelector = selector }

	listWatch := func(kind string, rc rest.Interface, resource string, opts func(*meta.ListOptions)) cache.ListerWatcher {
		lw := cache.NewFilteredListWatchFromClient(rc, resource, api.NamespaceAll, opts)
		return cache.ToListWatcherWithWatchListSemantics(c.gc.listWatch(kind, lw), client)
	}
	c.add(kindService, &api.Service{}, listWatch(kindService, client.CoreV1().RESTClient(), "services", withSelector), toService)
	if !o.noEndpoints {
		c.add(kindEndpointSlice, &discovery.EndpointSlice{}, listWatch(kindEndpointSlice, client.DiscoveryV1().RESTClient(), "endpointslices", withSelector), toEndpointSlice)
	}
	c.add(kindNamespace, &api.Namespace{}, listWatch(kindNamespace, client.CoreV1().RESTClient(), "namespaces", func(*meta.ListOptions) {}), toNamespace)
	return c, nil
}

// The kinds the controller watches: queue names, indexKeys' views and the
// kind label of the metrics.
const (
	kindService       = "service"
	kindEndpointSlice = "endpointslice"
	kindNamespace     = "namespace"
)

func (c *controller) add(kind string, objType runtime.Object, lw cache.ListerWatcher, transform cache.TransformFunc) {
	queue := &listingQueue{RealFIFO: newQueue(c.o.idx, kind, transform), kind: kind, gc: c.gc}
	c.kinds = append(c.kinds, &kindWatch{
		reflector: cache.NewReflectorWithOptions(lw, objType, queue, cache.ReflectorOptions{Name: kind, TypeDescription: kind, Backoff: &watchBackoff}),
		queue:     queue,
		process: func(obj any, initial bool) error {
			deltas, ok := obj.(cache.Deltas)
			if !ok {
				return fmt.Errorf("%s queue: got %T, not Deltas", kind, obj)
			}
			for _, d := range deltas {
				c.apply(kind, eventOf(d.Type, initial), d.Object)
			}
			return nil
		},
	})
}

// run lists and watches until stop is closed.
func (w *kindWatch) run(stop <-chan struct{}) {
	var reflecting sync.WaitGroup
	reflecting.Go(func() { w.reflector.Run(stop) })
	defer reflecting.Wait()
	go func() { <-stop; w.queue.Close() }()
	for {
		if _, err := w.queue.Pop(w.process); errors.Is(err, cache.ErrFIFOClosed) {
			return
		}
	}
}

// newQueue is the list-watch queue of one kind. A RealFIFO, as informers
// use: the backing array that held the list is released with the first
// change after it drained (client-go reslices it as it pops), where a
// DeltaFIFO keeps a map sized for the initial list for good.
func newQueue(x *index, kind string, transform cache.TransformFunc) *cache.RealFIFO {
	return cache.NewRealFIFOWithOptions(cache.RealFIFOOptions{
		Name:         kind,
		KeyFunction:  cache.MetaNamespaceKeyFunc,
		KnownObjects: indexKeys{x: x, kind: kind},
		Transformer:  transform,
	})
}

// eventOf names a queue change for the events metric as informers do: the
// initial list adds, later lists update.
func eventOf(t cache.DeltaType, initial bool) string {
	switch {
	case t == cache.Deleted:
		return "delete"
	case t == cache.Added || initial:
		return "add"
	default:
		return "update"
	}
}

// restConfig builds the API client configuration from kubeconfig, endpoint
// and tls, or the in-cluster service account.
func (o *Outpost) restConfig() (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	switch {
	case o.clientConfig != nil:
		cfg, err = o.clientConfig.ClientConfig()
	case o.endpoint != "":
		overrides := &clientcmd.ConfigOverrides{
			ClusterInfo: clientcmdapi.Cluster{Server: o.endpoint, CertificateAuthority: o.tlsCA},
			AuthInfo:    clientcmdapi.AuthInfo{ClientCertificate: o.tlsCert, ClientKey: o.tlsKey},
		}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{}, overrides).ClientConfig()
	default:
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.UserAgent = fmt.Sprintf("%s/%s outpost (%s/%s)", coremain.CoreName, coremain.CoreVersion, goruntime.GOOS, goruntime.GOARCH)
	return cfg, nil
}

// start loads the snapshot if there is one, starts the informers and waits
// (up to startup_timeout, and not at all when a snapshot was loaded) for
// them to sync.
func (o *Outpost) start(ctx context.Context) error {
	if o.snapshotPath != "" {
		o.loadSnapshot()
	}
	o.ctrl.run()
	if o.snapshotPath != "" {
		o.ctrl.done.Add(1)
		go func() {
			defer o.ctrl.done.Done()
			o.writeSnapshotsUntil(o.ctrl.stopCh)
		}()
	}
	if o.fromSnapshot.Load() {
		return nil
	}
	timeout := time.NewTimer(o.startupTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if o.informersSynced.Load() {
				return nil
			}
		case <-timeout.C:
			log.Warning("starting server with unsynced Kubernetes API")
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stop stops the informers and writes a last snapshot if the index holds
// the API's data: one loaded from a snapshot is not written back, which
// would make it look younger than it is to max-age.
func (o *Outpost) stop() error {
	o.ctrl.stopOnce.Do(func() { close(o.ctrl.stopCh) })
	o.ctrl.done.Wait()
	if o.snapshotExpiry != nil {
		o.snapshotExpiry.Stop()
	}
	if o.snapshotPath != "" && o.informersSynced.Load() {
		_, err := o.writeSnapshot()
		return err
	}
	return nil
}

func (c *controller) run() {
	for _, kind := range c.kinds {
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			kind.run(c.stopCh)
		}()
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		c.waitForSync()
	}()
}

// waitForSync marks the plugin synced once every kind has been listed and
// the list applied. What a snapshot held that the API no longer has is gone
// by then: the list's deletions (indexKeys) have been applied too.
func (c *controller) waitForSync() {
	syncs := make([]cache.InformerSynced, len(c.kinds))
	for i, kind := range c.kinds {
		syncs[i] = kind.queue.HasSynced
	}
	if !cache.WaitForCacheSync(c.stopCh, syncs...) {
		return
	}
	c.o.informersSynced.Store(true)
	c.o.fromSnapshot.Store(false)
	c.o.snapshotExpired.Store(false)
	synced.Set(1)
	c.o.updateObjectGauges()
	services, slices := c.o.idx.counts()
	log.Infof("synced: %d services, %d endpointslices", services, slices)
	// The initial lists were decoded into full API objects that are garbage
	// now; hand that memory back instead of keeping it as idle heap.
	debug.FreeOSMemory()
}

func (o *Outpost) updateObjectGauges() {
	s, e := o.idx.counts()
	objectCount.WithLabelValues(kindService).Set(float64(s))
	objectCount.WithLabelValues(kindEndpointSlice).Set(float64(e))
}

// apply applies one informer event to the index.
func (c *controller) apply(kind, event string, obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	switch v := obj.(type) {
	case *Service:
		if event == "delete" {
			c.o.idx.deleteService(v)
		} else {
			c.o.idx.setService(v)
		}
	case *EndpointSlice:
		if event == "delete" {
			c.o.idx.deleteSlice(v)
		} else {
			c.o.idx.setSlice(v)
		}
	case *Namespace:
		if event == "delete" {
			c.o.idx.deleteNamespace(v.Name)
		} else {
			c.o.idx.setNamespace(v.Name)
		}
	default:
		return
	}
	eventCount.WithLabelValues(kind, event).Inc()
}
