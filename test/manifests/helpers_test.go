package manifests

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// find returns the rendered object of that kind, namespace and name.
func find(t *testing.T, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	for _, u := range rendered {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			return u
		}
	}
	t.Fatalf("%s renders no %s %s/%s", installTree, kind, namespace, name)
	return nil
}

// typed converts a rendered object into its Go type.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s: %v", Ref(u), err)
	}
	return out
}

// workload is a rendered Deployment or DaemonSet reduced to what other
// objects refer to.
type workload struct {
	ref       string
	namespace string
	selector  *metav1.LabelSelector
	template  corev1.PodTemplateSpec
}

func workloads(t *testing.T) []workload {
	t.Helper()
	var out []workload
	for _, u := range rendered {
		switch u.GetKind() {
		case "Deployment":
			d := typed[appsv1.Deployment](t, u)
			out = append(out, workload{Ref(u), d.Namespace, d.Spec.Selector, d.Spec.Template})
		case "DaemonSet":
			d := typed[appsv1.DaemonSet](t, u)
			out = append(out, workload{Ref(u), d.Namespace, d.Spec.Selector, d.Spec.Template})
		}
	}
	return out
}

func podSpecOf(t *testing.T, u *unstructured.Unstructured) *corev1.PodSpec {
	t.Helper()
	for _, w := range workloads(t) {
		if w.ref == Ref(u) {
			return w.template.Spec.DeepCopy()
		}
	}
	t.Fatalf("%s is not a workload", Ref(u))
	return nil
}

func metaFor(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{GenerateName: name + "-", Namespace: namespace}
}
