package clusterranges

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/outpost-dev/outpost/operator/policy"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=servicecidrs,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch

// Options configure a Learner.
type Options struct {
	// Policy receives the learned ranges.
	Policy *policy.Policy
	// OnChange is called after the learned set changed, so that what was
	// checked against the old set is checked again. It is not called for
	// the first set, which is in place before the manager starts any
	// controller. It runs on an informer's goroutine: it must not block.
	OnChange func(context.Context)
}

// Learner keeps Options.Policy's learned ranges equal to the cluster's own.
// It watches through a cache of its own: the manager's cache sees only the
// EndpointSlices the operator manages, and Nodes are kept here stripped to
// the fields that matter.
type Learner struct {
	cache        cache.Cache
	opts         Options
	serviceCIDRs bool // the API server serves networking.k8s.io/v1 ServiceCIDR
	log          logr.Logger

	mu sync.Mutex // serialises learning, so an older list never overwrites a newer one
	// ctx is Start's, for the lists and OnChange run from informer
	// callbacks, which have none of their own.
	ctx     context.Context
	learned bool // the first set is in place; changes from now on are reported
}

// Setup adds a Learner to mgr. The manager waits for it to have learned the
// cluster's ranges before it starts any controller, so no address is ever
// checked against an empty set.
func Setup(mgr manager.Manager, opts Options) (*Learner, error) {
	l := &Learner{opts: opts, log: mgr.GetLogger().WithName("clusterranges"), ctx: context.Background()}
	_, err := mgr.GetRESTMapper().RESTMapping(networkingv1.SchemeGroupVersion.WithKind("ServiceCIDR").GroupKind(), networkingv1.SchemeGroupVersion.Version)
	switch {
	case err == nil:
		l.serviceCIDRs = true
	case meta.IsNoMatchError(err):
		// Before Kubernetes 1.33 the service range is only a flag of
		// the API server; --service-cidr must name it.
		l.log.Info("the API server does not serve networking.k8s.io/v1 ServiceCIDR; the service range is known only from --service-cidr")
	default:
		return nil, fmt.Errorf("look up ServiceCIDR: %w", err)
	}

	l.cache, err = cache.New(mgr.GetConfig(), cache.Options{
		Scheme:                      mgr.GetScheme(),
		Mapper:                      mgr.GetRESTMapper(),
		ReaderFailOnMissingInformer: true,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Transform: keepRanges},
			&discoveryv1.EndpointSlice{}: {
				Namespaces: map[string]cache.Config{apiServerNamespace: {}},
				Label:      labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: apiServerService}),
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create the cluster ranges cache: %w", err)
	}
	watched := []client.Object{&corev1.Node{}, &discoveryv1.EndpointSlice{}}
	if l.serviceCIDRs {
		watched = append(watched, &networkingv1.ServiceCIDR{})
	}
	for _, obj := range watched {
		informer, err := l.cache.GetInformer(context.Background(), obj)
		if err != nil {
			return nil, fmt.Errorf("watch %T: %w", obj, err)
		}
		if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { l.learn() },
			UpdateFunc: func(old, cur any) {
				if !slices.Equal(rangesOf(old), rangesOf(cur)) {
					l.learn()
				}
			},
			DeleteFunc: func(any) { l.learn() },
		}); err != nil {
			return nil, fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	if err := mgr.Add(runnable{l}); err != nil {
		return nil, err
	}
	return l, nil
}

// learn lists the watched objects and replaces the policy's learned set.
func (l *Learner) learn() {
	l.mu.Lock()
	ranges, err := l.list(l.ctx)
	if err != nil {
		l.mu.Unlock()
		l.log.Error(err, "list the cluster's ranges; keeping the ranges learned before")
		return
	}
	changed := l.opts.Policy.SetLearned(ranges)
	report := changed && l.learned
	l.learned = true
	ctx := l.ctx
	l.mu.Unlock()
	if changed {
		l.log.Info("learned the cluster's ranges", "ranges", len(ranges))
	}
	if report && l.opts.OnChange != nil {
		l.opts.OnChange(ctx)
	}
}

func (l *Learner) list(ctx context.Context) ([]policy.LearnedRange, error) {
	var nodes corev1.NodeList
	if err := l.cache.List(ctx, &nodes); err != nil {
		return nil, err
	}
	var slices discoveryv1.EndpointSliceList
	if err := l.cache.List(ctx, &slices, client.InNamespace(apiServerNamespace), client.MatchingLabels{discoveryv1.LabelServiceName: apiServerService}); err != nil {
		return nil, err
	}
	var cidrs networkingv1.ServiceCIDRList
	if l.serviceCIDRs {
		if err := l.cache.List(ctx, &cidrs); err != nil {
			return nil, err
		}
	}
	return Learn(nodes.Items, cidrs.Items, slices.Items), nil
}

// keepRanges strips a Node to what rangesOf reads: a Node's status carries
// its image list and conditions, which would cost memory per node for
// nothing.
func keepRanges(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		TypeMeta: node.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            node.Name,
			UID:             node.UID,
			ResourceVersion: node.ResourceVersion,
		},
		Spec:   corev1.NodeSpec{PodCIDR: node.Spec.PodCIDR, PodCIDRs: node.Spec.PodCIDRs},
		Status: corev1.NodeStatus{Addresses: node.Status.Addresses},
	}, nil
}

// runnable puts the Learner among the manager's caches, which the manager
// starts and waits for before anything else: GetCache's WaitForCacheSync,
// the manager's readiness check for caches, returns only after the first
// learning.
type runnable struct{ l *Learner }

func (r runnable) Start(ctx context.Context) error {
	r.l.mu.Lock()
	r.l.ctx = ctx
	r.l.mu.Unlock()
	return r.l.cache.Start(ctx)
}

func (r runnable) GetCache() cache.Cache { return learnedWhenSynced{Cache: r.l.cache, l: r.l} }

type learnedWhenSynced struct {
	cache.Cache
	l *Learner
}

func (c learnedWhenSynced) WaitForCacheSync(ctx context.Context) bool {
	if !c.Cache.WaitForCacheSync(ctx) {
		return false
	}
	c.l.learn()
	return true
}
