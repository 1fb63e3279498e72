package controller

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
)

// sweepOrphans deletes, once the caches are synced after the operator
// became leader, the children of ExternalBackends deleted while no operator
// was running (or recreated under the same name, a new UID). Reconcile
// deletes the children of a backend it sees go; one that went while the
// operator was down is never seen, and without a garbage collector (or
// before it gets there) its Service would block a new backend of the same
// name with a ServiceConflict.
func (r *ExternalBackendReconciler) sweepOrphans(ctx context.Context, synced cache.Cache) error {
	if !synced.WaitForCacheSync(ctx) {
		return nil // stopping
	}
	var children []client.Object
	mine := client.MatchingLabels{desired.LabelManagedBy: desired.ManagedBy}
	var services corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	var endpoints corev1.EndpointsList //nolint:staticcheck // legacy Endpoints are written on purpose
	for _, list := range []client.ObjectList{&services, &slices, &endpoints} {
		if err := r.Client.List(ctx, list, mine); err != nil {
			return fmt.Errorf("list the operator's objects to delete orphans: %w", err)
		}
	}
	for i := range services.Items {
		children = append(children, &services.Items[i])
	}
	for i := range slices.Items {
		children = append(children, &slices.Items[i])
	}
	for i := range endpoints.Items {
		children = append(children, &endpoints.Items[i])
	}
	var errs []error
	for _, obj := range children {
		owner := metav1.GetControllerOf(obj)
		if owner == nil || owner.Kind != "ExternalBackend" || owner.APIVersion != v1alpha1.GroupVersion.String() {
			continue
		}
		alive, err := r.ownerAlive(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: owner.Name}, owner.UID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if alive {
			continue
		}
		_, what, err := r.deleteChild(ctx, obj, func(client.Object) bool { return true })
		if err == nil {
			logf.FromContext(ctx).Info("deleted the child of a deleted ExternalBackend", "object", what, "namespace", obj.GetNamespace(), "owner", owner.Name)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ownerAlive says whether the ExternalBackend key with that UID exists; a
// miss in the cache is confirmed past it.
func (r *ExternalBackendReconciler) ownerAlive(ctx context.Context, key types.NamespacedName, uid types.UID) (bool, error) {
	xb := &v1alpha1.ExternalBackend{}
	err := r.Client.Get(ctx, key, xb)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, key, xb)
	}
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("get ExternalBackend %s, owner of an object of the operator: %w", key, err)
	}
	return xb.UID == uid, nil
}
