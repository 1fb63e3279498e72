package manifests

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager owns the fields these applies write.
const FieldManager = "outpost-manifests"

// Install server-side applies objs in stage order (Namespaces, then CRDs,
// waiting until they are established, then the rest) and returns every
// refused object in one error, so a broken tree reports all its faults at once.
//
// With dryRun the last stage is only validated (dry-run=All: every admission
// step runs, nothing is stored). Namespaces and CRDs are still created for
// real: the server can only check an object against a namespace and a schema
// that exist.
func Install(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, dryRun bool) error {
	var errs []error
	for _, stage := range []Stage{StageNamespaces, StageDefinitions, StageObjects} {
		for _, u := range objs {
			if StageOf(u) != stage {
				continue
			}
			opts := []client.ApplyOption{client.FieldOwner(FieldManager), client.ForceOwnership}
			if dryRun && stage == StageObjects {
				opts = append(opts, client.DryRunAll)
			}
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), opts...); err != nil {
				errs = append(errs, fmt.Errorf("apply %s: %w", Ref(u), err))
				continue
			}
			if stage == StageDefinitions {
				if err := waitEstablished(ctx, c, u.GetName()); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if len(errs) > 0 {
			// Later stages would only fail for the same reason.
			return errors.Join(errs...)
		}
	}
	return nil
}

// waitEstablished waits until the API server serves the CRD named name.
func waitEstablished(ctx context.Context, c client.Client, name string) error {
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" {
				last = fmt.Sprint(m["status"], ": ", m["message"])
				if m["status"] == "True" {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CustomResourceDefinition %s not established (%s): %w", name, last, err)
	}
	return nil
}
