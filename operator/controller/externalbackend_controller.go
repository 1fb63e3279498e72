// Package controller reconciles ExternalBackends. It only does the I/O: it
// reads the object and the Service of its name, asks the resolver and the
// prober what they know, lets package status decide the rows, conditions and
// Events and package desired the children, applies what changed with
// server-side apply, deletes what is no longer wanted, and writes the status
// and Events.
package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	discoveryac "k8s.io/client-go/applyconfigurations/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/notify"
	"github.com/outpost-dev/outpost/operator/policy"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
	"github.com/outpost-dev/outpost/operator/status"
)

// ExternalBackendReconciler turns ExternalBackends into Services,
// EndpointSlices and Endpoints.
type ExternalBackendReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads past the cache; used only to confirm that a Service
	// the cache does not know really does not exist before creating it, so a
	// lagging cache can never make us take over someone else's Service.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	Policy    *policy.Policy
	Options   desired.Options
	// Refresher resolves the DNS names of spec.addresses and keeps them fresh.
	Refresher *resolve.Refresher
	// Prober health-checks the addresses of backends with a healthCheck.
	Prober *probe.Prober
	// Wake turns the Refresher's and Prober's notifications into reconciles.
	Wake *notify.Source
	// Limits bound what one ExternalBackend may publish (the operator's
	// flags); zero values bound nothing.
	Limits status.Limits
}

// Writes are server-side applies (patch), status updates and deletes; the
// owner references set blockOwnerDeletion, which the
// OwnerReferencesPermissionEnforcement admission plugin allows only to who may
// update the owner's finalizers.
// +kubebuilder:rbac:groups=outpost.dev,resources=externalbackends,verbs=get;list;watch
// +kubebuilder:rbac:groups=outpost.dev,resources=externalbackends/status,verbs=update
// +kubebuilder:rbac:groups=outpost.dev,resources=externalbackends/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=services;endpoints,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch

// Reconcile brings the children of one ExternalBackend to their desired state.
func (r *ExternalBackendReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	xb := &v1alpha1.ExternalBackend{}
	if err := r.Client.Get(ctx, req.NamespacedName, xb); err != nil {
		if apierrors.IsNotFound(err) {
			// Garbage collection removes the children through their owner
			// references too; deleting them here does not wait for it and
			// keeps clusters without a garbage collector clean.
			r.forget(req.NamespacedName)
			forgetEndpoints(req.NamespacedName)
			gone := &v1alpha1.ExternalBackend{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}}
			return ctrl.Result{}, r.deleteChildren(ctx, gone, controlledByName(req.Name))
		}
		return ctrl.Result{}, err
	}
	if !xb.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		forgetEndpoints(req.NamespacedName)
		return ctrl.Result{}, nil
	}

	// Ownership comes first: a backend whose Service name is taken writes
	// nothing, so it must not make the resolver and the prober work for it
	// either, nor report on addresses.
	live, err := r.liveService(ctx, xb)
	if err != nil {
		return ctrl.Result{}, err
	}
	owner := status.ServiceOwnership(xb, live)
	if owner.Conflict != "" {
		r.forget(req.NamespacedName)
		res := status.Compute(xb, status.Inputs{Conflict: owner.Conflict, Now: time.Now()})
		r.record(ctx, xb, res.Events)
		return ctrl.Result{}, r.updateStatus(ctx, xb, res.Status(nil))
	}
	if owner.Recreate {
		if err := r.deleteForRecreate(ctx, xb, live); err != nil {
			return ctrl.Result{}, err
		}
		live = nil
	}

	published, err := r.published(ctx, xb)
	if err != nil {
		return ctrl.Result{}, err
	}
	in := r.observe(ctx, xb, published)
	in.Adopting = owner.Adopt
	res := status.Compute(xb, in)
	r.record(ctx, xb, res.Events)
	var applyErr error
	switch {
	case res.Refused != "":
		// Nothing may be published: what an earlier spec, policy or flag
		// let us write goes. A Service still to be adopted is not ours
		// and stays as it is.
		applyErr = r.deleteChildren(ctx, xb, controlledBy(xb))
	case owner.Adopt:
		applyErr = r.adopt(ctx, xb, live, desired.Compute(xb, res.Endpoints, live, r.Options))
	default:
		applyErr = r.applyChildren(ctx, xb, desired.Compute(xb, res.Endpoints, live, r.Options))
	}
	if err := r.updateStatus(ctx, xb, res.Status(applyErr)); err != nil {
		return ctrl.Result{}, errors.Join(applyErr, err)
	}
	return ctrl.Result{}, applyErr
}

// published reads back what xb published, from its status and the
// EndpointSlices in the cache.
func (r *ExternalBackendReconciler) published(ctx context.Context, xb *v1alpha1.ExternalBackend) (status.Published, error) {
	if desired.IsAlias(xb) {
		return status.Published{}, nil
	}
	list := &discoveryv1.EndpointSliceList{}
	if err := r.Client.List(ctx, list, client.InNamespace(xb.Namespace), client.MatchingLabels(desired.SliceLabels(xb.Name))); err != nil {
		return status.Published{}, fmt.Errorf("list EndpointSlices of %s: %w", xb.Name, err)
	}
	owned := list.Items[:0]
	for _, s := range list.Items {
		if metav1.IsControlledBy(&s, xb) {
			owned = append(owned, s)
		}
	}
	return status.ReadPublished(xb, owned), nil
}

// liveService returns the Service of xb's name, nil when there is none. A
// Service the cache does not know is looked up past it, so a lagging cache
// can never make us take over someone else's Service; so is a foreign one
// xb asks to adopt, because the cache keeps only the metadata of those and
// adoption looks at the spec.
func (r *ExternalBackendReconciler) liveService(ctx context.Context, xb *v1alpha1.ExternalBackend) (*corev1.Service, error) {
	key := client.ObjectKeyFromObject(xb)
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, key, svc)
	if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(svc, xb) && xb.Annotations[v1alpha1.AdoptAnnotation] == "true") {
		err = r.APIReader.Get(ctx, key, svc)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get Service %s: %w", key, err)
	}
	return svc, nil
}

// deleteForRecreate deletes our Service so that applyChildren creates it
// again: switching headless changes its clusterIP, which is immutable.
func (r *ExternalBackendReconciler) deleteForRecreate(ctx context.Context, xb *v1alpha1.ExternalBackend, svc *corev1.Service) error {
	key := client.ObjectKeyFromObject(svc)
	if err := r.Client.Delete(ctx, svc, client.Preconditions{UID: &svc.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete Service %s to switch headless: %w", key, err)
	}
	writes.WithLabelValues("Service", "delete").Inc()
	r.Recorder.Eventf(xb, svc, corev1.EventTypeNormal, v1alpha1.EventDeleted, "Recreate", "Service %s recreated: headless changed and clusterIP is immutable", key)
	return nil
}

// MirroringControllerName is the EndpointSlice managed-by label of the slices
// the endpointslice-mirroring controller makes from hand-written Endpoints.
const MirroringControllerName = "endpointslicemirroring-controller.k8s.io"

// adopt takes over the hand-written Service live, in an order that never
// leaves it without endpoints: our EndpointSlices first, then the mirrored
// slices go, then the hand-written Endpoints are replaced by ours (labelled
// to skip mirroring) or, without --write-endpoints, deleted so the mirroring
// controller does not write their slices again; last, applyChildren adds our
// owner reference to the Service, whose cluster IP, node ports and other
// fields stay with their field managers. A failure part way leaves the
// Service unowned, so the next reconcile adopts again from the start.
func (r *ExternalBackendReconciler) adopt(ctx context.Context, xb *v1alpha1.ExternalBackend, live *corev1.Service, objs desired.Objects) error {
	for _, want := range objs.EndpointSlices {
		slice := &discoveryv1.EndpointSlice{}
		if _, _, err := r.apply(ctx, slice, want, func() (any, error) {
			return discoveryac.ExtractEndpointSlice(slice, desired.FieldManager)
		}); err != nil {
			return err
		}
	}
	// The cache holds only our slices and Endpoints: read the others past it.
	mirrored := &discoveryv1.EndpointSliceList{}
	if err := r.APIReader.List(ctx, mirrored, client.InNamespace(xb.Namespace), client.MatchingLabels{
		discoveryv1.LabelServiceName: xb.Name,
		discoveryv1.LabelManagedBy:   MirroringControllerName,
	}); err != nil {
		return fmt.Errorf("list the mirrored EndpointSlices of Service %s/%s: %w", xb.Namespace, xb.Name, err)
	}
	for i := range mirrored.Items {
		slice := &mirrored.Items[i]
		if err := r.Client.Delete(ctx, slice, client.Preconditions{UID: &slice.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete mirrored EndpointSlice %s/%s: %w", slice.Namespace, slice.Name, err)
		}
		writes.WithLabelValues("EndpointSlice", "delete").Inc()
	}
	if objs.Endpoints == nil {
		if err := r.deleteHandWrittenEndpoints(ctx, xb); err != nil {
			return err
		}
	}
	if err := r.applyChildren(ctx, xb, objs); err != nil {
		return err
	}
	r.Recorder.Eventf(xb, live, corev1.EventTypeNormal, v1alpha1.EventAdopted, "Adopt",
		"adopted Service %s/%s (clusterIP %s kept); replaced its hand-written Endpoints and %d mirrored EndpointSlice(s)",
		live.Namespace, live.Name, cmp.Or(live.Spec.ClusterIP, "none"), len(mirrored.Items))
	return nil
}

// deleteHandWrittenEndpoints deletes the Endpoints of xb's name unless
// another object controls them.
func (r *ExternalBackendReconciler) deleteHandWrittenEndpoints(ctx context.Context, xb *v1alpha1.ExternalBackend) error {
	eps := &corev1.Endpoints{} //nolint:staticcheck // legacy Endpoints are replaced on purpose
	switch err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(xb), eps); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("get Endpoints %s/%s: %w", xb.Namespace, xb.Name, err)
	}
	if owner := metav1.GetControllerOf(eps); owner != nil && !metav1.IsControlledBy(eps, xb) {
		return nil
	}
	if err := r.Client.Delete(ctx, eps, client.Preconditions{UID: &eps.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete hand-written Endpoints %s/%s: %w", xb.Namespace, xb.Name, err)
	}
	writes.WithLabelValues("Endpoints", "delete").Inc()
	return nil
}

// record records the Events the status core decided on; warnings go to the
// log too, for clusters that keep Events only an hour.
func (r *ExternalBackendReconciler) record(ctx context.Context, xb *v1alpha1.ExternalBackend, events []status.Event) {
	for _, e := range events {
		if e.Type == corev1.EventTypeWarning {
			logf.FromContext(ctx).Info(e.Note, "reason", e.Reason)
		}
		r.Recorder.Eventf(xb, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
	}
}

// applyChildren applies what changed and deletes what is no longer wanted,
// then tells the user in one Event per kind of change.
func (r *ExternalBackendReconciler) applyChildren(ctx context.Context, xb *v1alpha1.ExternalBackend, objs desired.Objects) error {
	var errs []error
	changes := map[string][]string{} // Event reason -> "Kind name"
	record := func(reason, what string, err error) {
		if reason != "" {
			changes[reason] = append(changes[reason], what)
		}
		errs = append(errs, err)
	}

	svc := &corev1.Service{}
	record(r.apply(ctx, svc, objs.Service, func() (any, error) {
		return corev1ac.ExtractService(svc, desired.FieldManager)
	}))
	wanted := map[string]bool{}
	for _, want := range objs.EndpointSlices {
		wanted[*want.Name] = true
		slice := &discoveryv1.EndpointSlice{}
		record(r.apply(ctx, slice, want, func() (any, error) {
			return discoveryac.ExtractEndpointSlice(slice, desired.FieldManager)
		}))
	}
	list := &discoveryv1.EndpointSliceList{}
	if err := r.Client.List(ctx, list, client.InNamespace(xb.Namespace), client.MatchingLabels(desired.SliceLabels(xb.Name))); err != nil {
		errs = append(errs, fmt.Errorf("list EndpointSlices of %s: %w", xb.Name, err))
	}
	for i := range list.Items {
		if !wanted[list.Items[i].Name] {
			record(r.deleteChild(ctx, &list.Items[i], controlledBy(xb)))
		}
	}
	if objs.Endpoints != nil {
		eps := &corev1.Endpoints{}
		record(r.apply(ctx, eps, objs.Endpoints, func() (any, error) {
			return corev1ac.ExtractEndpoints(eps, desired.FieldManager) //nolint:staticcheck // legacy Endpoints are written on purpose
		}))
	} else {
		record(r.deleteChild(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: xb.Name, Namespace: xb.Namespace}}, controlledBy(xb)))
	}

	for _, reason := range []string{v1alpha1.EventCreated, v1alpha1.EventUpdated, v1alpha1.EventDeleted} {
		if what := changes[reason]; len(what) > 0 {
			prefix := strings.ToLower(reason) + " "
			r.Recorder.Eventf(xb, nil, corev1.EventTypeNormal, reason, "Apply", "%s%s", prefix, status.JoinBounded(what, ", ", status.MaxEventNote-len(prefix)))
		}
	}
	return errors.Join(errs...)
}

// applyConfiguration is what every typed apply configuration offers.
type applyConfiguration interface {
	runtime.ApplyConfiguration
	GetName() *string
	GetNamespace() *string
}

// apply writes want unless the fields we own in the live object already equal
// it, so a resync of a steady cluster makes no write at all. live is filled
// from the cache; extract returns the part of live owned by our field manager.
// It returns the Event reason for the write it made ("" for none) and what it
// wrote, as "Kind name".
func (r *ExternalBackendReconciler) apply(ctx context.Context, live client.Object, want applyConfiguration, extract func() (any, error)) (reason, what string, err error) {
	kind := reflect.TypeOf(live).Elem().Name()
	key := types.NamespacedName{Namespace: *want.GetNamespace(), Name: *want.GetName()}
	what = kind + " " + key.Name
	err = r.Client.Get(ctx, key, live)
	exists := err == nil
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", what, fmt.Errorf("get %s %s: %w", kind, key, err)
	default:
		owned, err := extract()
		if err != nil {
			return "", what, fmt.Errorf("extract %s %s: %w", kind, key, err)
		}
		ignoreChangeTrigger(owned)
		if same, err := sameJSON(owned, want); err != nil {
			return "", what, err
		} else if same {
			return "", what, nil
		}
	}
	stampChangeTrigger(want, time.Now())
	if err := r.Client.Apply(ctx, want, client.FieldOwner(desired.FieldManager), client.ForceOwnership); err != nil {
		return "", what, fmt.Errorf("apply %s %s: %w", kind, key, err)
	}
	if exists {
		writes.WithLabelValues(kind, "update").Inc()
		return v1alpha1.EventUpdated, what, nil
	}
	writes.WithLabelValues(kind, "create").Inc()
	return v1alpha1.EventCreated, what, nil
}

// sameJSON compares two objects by their JSON form, the form the API server
// sees, so that typed and extracted apply configurations compare equal.
func sameJSON(a, b any) (bool, error) {
	var av, bv any
	for _, x := range []struct {
		in  any
		out *any
	}{{a, &av}, {b, &bv}} {
		raw, err := json.Marshal(x.in)
		if err != nil {
			return false, err
		}
		if err := json.Unmarshal(raw, x.out); err != nil {
			return false, err
		}
	}
	return reflect.DeepEqual(av, bv), nil
}

// deleteChild deletes obj if owned says it is ours; obj needs only name and
// namespace. It returns the Event reason for the delete it made, if any.
func (r *ExternalBackendReconciler) deleteChild(ctx context.Context, obj client.Object, owned func(client.Object) bool) (reason, what string, err error) {
	kind := reflect.TypeOf(obj).Elem().Name()
	what = kind + " " + obj.GetName()
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return "", what, client.IgnoreNotFound(err)
	}
	if !owned(obj) {
		return "", what, nil
	}
	uid := obj.GetUID()
	if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		return "", what, fmt.Errorf("delete %s: %w", what, err)
	}
	writes.WithLabelValues(kind, "delete").Inc()
	return v1alpha1.EventDeleted, what, nil
}

// controlledBy says whether xb is an object's controller.
func controlledBy(xb *v1alpha1.ExternalBackend) func(client.Object) bool {
	return func(obj client.Object) bool { return metav1.IsControlledBy(obj, xb) }
}

// controlledByName says whether an object's controller is an ExternalBackend
// of that name: after the ExternalBackend is gone, its UID is unknown.
func controlledByName(name string) func(client.Object) bool {
	return func(obj client.Object) bool {
		owner := metav1.GetControllerOf(obj)
		return owner != nil && owner.Kind == "ExternalBackend" && owner.Name == name &&
			owner.APIVersion == v1alpha1.GroupVersion.String()
	}
}

// deleteChildren removes what xb generated, as owned tells, and says so
// in an Event when xb still exists.
func (r *ExternalBackendReconciler) deleteChildren(ctx context.Context, xb *v1alpha1.ExternalBackend, owned func(client.Object) bool) error {
	key := client.ObjectKeyFromObject(xb)
	candidates := []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}},
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace}}, //nolint:staticcheck // legacy Endpoints are written on purpose
	}
	slices := &discoveryv1.EndpointSliceList{}
	if err := r.Client.List(ctx, slices, client.InNamespace(key.Namespace), client.MatchingLabels(desired.SliceLabels(key.Name))); err != nil {
		return fmt.Errorf("list EndpointSlices of %s: %w", key, err)
	}
	for i := range slices.Items {
		candidates = append(candidates, &slices.Items[i])
	}
	var errs []error
	var deleted []string
	for _, obj := range candidates {
		reason, what, err := r.deleteChild(ctx, obj, owned)
		if reason != "" {
			deleted = append(deleted, what)
		}
		errs = append(errs, err)
	}
	if len(deleted) > 0 && xb.UID != "" {
		r.Recorder.Eventf(xb, nil, corev1.EventTypeNormal, v1alpha1.EventDeleted, "Apply", "deleted %s", strings.Join(deleted, ", "))
	}
	return errors.Join(errs...)
}

// updateStatus writes st unless it is what xb already has.
func (r *ExternalBackendReconciler) updateStatus(ctx context.Context, xb *v1alpha1.ExternalBackend, st v1alpha1.ExternalBackendStatus) error {
	exportEndpoints(client.ObjectKeyFromObject(xb), st)
	if equality.Semantic.DeepEqual(st, xb.Status) {
		return nil
	}
	xb.Status = st
	// An update, not a merge patch: it carries the resourceVersion, so a
	// status computed from a stale object is refused and recomputed.
	if err := r.Client.Status().Update(ctx, xb); err != nil {
		return fmt.Errorf("update status of %s: %w", client.ObjectKeyFromObject(xb), err)
	}
	writes.WithLabelValues("ExternalBackendStatus", "update").Inc()
	return nil
}

// SetupWithManager registers the reconciler. Besides its own children, it
// watches the deletion of any Service, so that an ExternalBackend blocked by
// a foreign Service of its name takes the name as soon as it is free.
func (r *ExternalBackendReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	sameName := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(obj)}}
	})
	onlyDeletes := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	// Children are created by this reconciler, so their creation is no news;
	// their changes (drift) and deletions are.
	notCreates := builder.WithPredicates(predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }})
	// Our own status writes change neither generation, labels nor
	// annotations, so they do not wake the reconciler again.
	specChanged := predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{})
	// Runs once per leadership, like the controller.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		if err := r.sweepOrphans(ctx, mgr.GetCache()); err != nil {
			logf.FromContext(ctx).Error(err, "delete the objects of ExternalBackends deleted while the operator was down")
		}
		return nil
	})); err != nil {
		return err
	}
	if err := indexCAConfigMaps(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ExternalBackend{}, builder.WithPredicates(specChanged)).
		WatchesRawSource(r.Wake).
		Owns(&corev1.Service{}, notCreates).
		Owns(&discoveryv1.EndpointSlice{}, notCreates).
		Owns(&corev1.Endpoints{}, notCreates). //nolint:staticcheck // legacy Endpoints are written on purpose
		Watches(&corev1.Service{}, sameName, builder.WithPredicates(onlyDeletes)).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.backendsUsingConfigMap)).
		Named("externalbackend").
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
}
