package syncer

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ChangeTracker holds the Services and EndpointSlices the rules are made from
// and which Services changed since the last sync.
type ChangeTracker struct {
	mu       sync.Mutex
	services map[types.NamespacedName]*v1.Service
	// slices by owning service, then by slice name.
	slices map[types.NamespacedName]map[string]*discovery.EndpointSlice
	// sliceOwner is the Service each slice (by namespace/name) was filed
	// under: a slice whose service-name label changes, or goes, must leave
	// the old Service's rules.
	sliceOwner map[types.NamespacedName]types.NamespacedName
	dirty      map[types.NamespacedName]bool
	// triggers are the last-change-trigger times of the slices changed
	// since the last sync, by Service; started keeps out those set before
	// this process began, whose programming an earlier syncer did.
	triggers map[types.NamespacedName][]trigger
	started  time.Time
	notify   chan struct{}
	synced   []cache.InformerSynced
}

// trigger is when a change that a slice reflects happened (its
// endpoints.kubernetes.io/last-change-trigger-time), for the family of its
// addresses.
type trigger struct {
	at   time.Time
	ipv6 bool
}

// sliceTrigger reads the trigger time the EndpointSlice controller, and the
// operator, set on a slice, as kube-proxy does.
func sliceTrigger(s *discovery.EndpointSlice) (trigger, bool) {
	raw, ok := s.Annotations[v1.EndpointsLastChangeTriggerTime]
	if !ok {
		return trigger{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return trigger{}, false
	}
	return trigger{at: at, ipv6: s.AddressType == discovery.AddressTypeIPv6}, true
}

// NewChangeTracker returns an empty tracker (feed it with the Set/Delete methods
// or Watch).
func NewChangeTracker() *ChangeTracker {
	return &ChangeTracker{
		services:   map[types.NamespacedName]*v1.Service{},
		slices:     map[types.NamespacedName]map[string]*discovery.EndpointSlice{},
		sliceOwner: map[types.NamespacedName]types.NamespacedName{},
		dirty:      map[types.NamespacedName]bool{},
		triggers:   map[types.NamespacedName][]trigger{},
		started:    time.Now(),
		notify:     make(chan struct{}, 1),
	}
}

// Changed is signalled (without blocking) after every change.
func (t *ChangeTracker) Changed() <-chan struct{} { return t.notify }

func (t *ChangeTracker) touch(nn types.NamespacedName) {
	t.dirty[nn] = true
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// SetService records a Service.
func (t *ChangeTracker) SetService(svc *v1.Service) {
	nn := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.services[nn] = svc
	t.touch(nn)
}

// DeleteService forgets a Service.
func (t *ChangeTracker) DeleteService(namespace, name string) {
	nn := types.NamespacedName{Namespace: namespace, Name: name}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.services, nn)
	t.touch(nn)
}

func sliceService(s *discovery.EndpointSlice) (types.NamespacedName, bool) {
	name, ok := s.Labels[discovery.LabelServiceName]
	return types.NamespacedName{Namespace: s.Namespace, Name: name}, ok && name != ""
}

// SetSlice records an EndpointSlice under the Service its service-name label
// names; a slice that no longer names one is forgotten.
func (t *ChangeTracker) SetSlice(s *discovery.EndpointSlice) {
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	nn, ok := sliceService(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	if owner, filed := t.sliceOwner[key]; filed && (!ok || owner != nn) {
		t.unfileSlice(key, owner)
	}
	if !ok {
		return
	}
	if t.slices[nn] == nil {
		t.slices[nn] = map[string]*discovery.EndpointSlice{}
	}
	t.slices[nn][s.Name] = s
	t.sliceOwner[key] = nn
	if tr, ok := sliceTrigger(s); ok && tr.at.After(t.started) {
		t.triggers[nn] = append(t.triggers[nn], tr)
	}
	t.touch(nn)
}

// DeleteSlice forgets an EndpointSlice, under the Service it was filed
// under (a deleted object may carry a newer label than the tracker saw).
func (t *ChangeTracker) DeleteSlice(s *discovery.EndpointSlice) {
	key := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	if owner, filed := t.sliceOwner[key]; filed {
		t.unfileSlice(key, owner)
	}
}

// unfileSlice removes slice key from owner's slices. Called with t.mu held.
func (t *ChangeTracker) unfileSlice(key, owner types.NamespacedName) {
	delete(t.slices[owner], key.Name)
	if len(t.slices[owner]) == 0 {
		delete(t.slices, owner)
	}
	delete(t.sliceOwner, key)
	t.touch(owner)
}

// snapshot is the part of the tracker state one sync needs: the Services
// that changed (or all of them) with their slices. Objects are shared with
// the tracker and never modified.
type snapshot struct {
	services map[types.NamespacedName]*v1.Service
	slices   map[types.NamespacedName][]*discovery.EndpointSlice
	dirty    map[types.NamespacedName]bool
	triggers []trigger
}

// triggersOf returns the trigger times of one family's slices.
func (s snapshot) triggersOf(ipv6 bool) []time.Time {
	var out []time.Time
	for _, tr := range s.triggers {
		if tr.ipv6 == ipv6 {
			out = append(out, tr.at)
		}
	}
	return out
}

// take returns the dirty Services (every Service if all) with their
// slices, and clears the dirty set. A deleted Service is dirty but absent
// from services.
func (t *ChangeTracker) take(all bool) snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := t.dirty
	if all {
		keys = make(map[types.NamespacedName]bool, len(t.services))
		for k := range t.services {
			keys[k] = true
		}
		for k := range t.dirty {
			keys[k] = true
		}
	}
	s := snapshot{
		services: make(map[types.NamespacedName]*v1.Service, len(keys)),
		slices:   make(map[types.NamespacedName][]*discovery.EndpointSlice, len(keys)),
		dirty:    keys,
	}
	for k := range keys {
		if svc, ok := t.services[k]; ok {
			s.services[k] = svc
		}
		s.triggers = append(s.triggers, t.triggers[k]...)
		delete(t.triggers, k)
		if m := t.slices[k]; len(m) > 0 {
			list := make([]*discovery.EndpointSlice, 0, len(m))
			for _, sl := range m {
				list = append(list, sl)
			}
			s.slices[k] = list
		}
	}
	t.dirty = map[types.NamespacedName]bool{}
	return s
}

// Watch starts informers on Services (matching labelSelector) and
// EndpointSlices that feed the tracker. Transforms shrink the cached
// objects to what the rules need.
func (t *ChangeTracker) Watch(ctx context.Context, client kubernetes.Interface, labelSelector string) error {
	svcFactory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labelSelector }))
	sliceFactory := informers.NewSharedInformerFactory(client, 0)

	svcInformer := svcFactory.Core().V1().Services().Informer()
	sliceInformer := sliceFactory.Discovery().V1().EndpointSlices().Informer()
	if err := svcInformer.SetTransform(func(obj any) (any, error) {
		if svc, ok := obj.(*v1.Service); ok {
			return shrinkService(svc), nil
		}
		return obj, nil
	}); err != nil {
		return fmt.Errorf("service informer transform: %w", err)
	}
	if err := sliceInformer.SetTransform(func(obj any) (any, error) {
		if s, ok := obj.(*discovery.EndpointSlice); ok {
			return shrinkSlice(s), nil
		}
		return obj, nil
	}); err != nil {
		return fmt.Errorf("endpointslice informer transform: %w", err)
	}
	if _, err := svcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.SetService(obj.(*v1.Service)) },
		UpdateFunc: func(_, obj any) { t.SetService(obj.(*v1.Service)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if svc, ok := obj.(*v1.Service); ok {
				t.DeleteService(svc.Namespace, svc.Name)
			}
		},
	}); err != nil {
		return err
	}
	if _, err := sliceInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.SetSlice(obj.(*discovery.EndpointSlice)) },
		UpdateFunc: func(_, obj any) { t.SetSlice(obj.(*discovery.EndpointSlice)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*discovery.EndpointSlice); ok {
				t.DeleteSlice(s)
			}
		},
	}); err != nil {
		return err
	}
	t.synced = []cache.InformerSynced{svcInformer.HasSynced, sliceInformer.HasSynced}
	svcFactory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	return nil
}

// WaitForSync blocks until the informers listed everything once.
func (t *ChangeTracker) WaitForSync(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), t.synced...) {
		return fmt.Errorf("informers did not sync within %s", timeout)
	}
	return nil
}
