package manifests

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The API server accepts a Service that selects nothing and a binding to a
// ServiceAccount that does not exist; the cluster then silently does not
// work. These checks catch the references that only a running cluster would.

// clusterScoped lists the rendered kinds that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true,
}

func TestEveryObjectLivesInAKnownNamespace(t *testing.T) {
	known := map[string]bool{"kube-system": true} // exists in every cluster
	for _, u := range rendered {
		if u.GetKind() == "Namespace" {
			known[u.GetName()] = true
		}
	}
	for _, u := range rendered {
		switch ns := u.GetNamespace(); {
		case clusterScoped[u.GetKind()] && ns != "":
			t.Errorf("%s is cluster-scoped but names namespace %q", Ref(u), ns)
		case !clusterScoped[u.GetKind()] && ns == "":
			t.Errorf("%s has no namespace: it would land in whatever namespace kubectl defaults to", Ref(u))
		case ns != "" && !known[ns]:
			t.Errorf("%s is in namespace %q, which the install neither creates nor can assume", Ref(u), ns)
		}
	}
}

func TestWorkloadReferencesResolve(t *testing.T) {
	for _, w := range workloads(t) {
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil {
			t.Errorf("%s: selector: %v", w.ref, err)
		} else if !sel.Matches(labels.Set(w.template.Labels)) {
			t.Errorf("%s: selector %s does not match its own Pod labels %v", w.ref, sel, w.template.Labels)
		}
		spec := w.template.Spec
		if sa := spec.ServiceAccountName; sa == "" {
			t.Errorf("%s runs as the namespace's default ServiceAccount; give it its own", w.ref)
		} else if !rendersObject("ServiceAccount", w.namespace, sa) {
			t.Errorf("%s uses ServiceAccount %s/%s, which the install does not create", w.ref, w.namespace, sa)
		}
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil && !rendersObject("ConfigMap", w.namespace, v.ConfigMap.Name) {
				t.Errorf("%s mounts ConfigMap %s/%s, which the install does not create", w.ref, w.namespace, v.ConfigMap.Name)
			}
		}
	}
}

func TestBindingsReferToRenderedRolesAndAccounts(t *testing.T) {
	for _, u := range rendered {
		var roleRef rbacv1.RoleRef
		var subjects []rbacv1.Subject
		switch u.GetKind() {
		case "ClusterRoleBinding":
			b := typed[rbacv1.ClusterRoleBinding](t, u)
			roleRef, subjects = b.RoleRef, b.Subjects
		case "RoleBinding":
			b := typed[rbacv1.RoleBinding](t, u)
			roleRef, subjects = b.RoleRef, b.Subjects
		default:
			continue
		}
		roleNS := ""
		if roleRef.Kind == "Role" {
			roleNS = u.GetNamespace()
		}
		if !rendersObject(roleRef.Kind, roleNS, roleRef.Name) {
			t.Errorf("%s binds %s %s, which the install does not create", Ref(u), roleRef.Kind, roleRef.Name)
		}
		for _, s := range subjects {
			if s.Kind == "ServiceAccount" && !rendersObject("ServiceAccount", s.Namespace, s.Name) {
				t.Errorf("%s binds ServiceAccount %s/%s, which the install does not create", Ref(u), s.Namespace, s.Name)
			}
		}
	}
}

// Every Service selects the Pods of a rendered workload in its own namespace,
// and every targetPort is a port those Pods declare with the same protocol.
func TestServicesReachTheirPods(t *testing.T) {
	for _, u := range rendered {
		if u.GetKind() != "Service" {
			continue
		}
		svc := typed[corev1.Service](t, u)
		var matched []workload
		for _, w := range workloads(t) {
			if w.namespace == svc.Namespace && len(svc.Spec.Selector) > 0 &&
				labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("%s selects %v: no rendered Pods in %s carry those labels", Ref(u), svc.Spec.Selector, svc.Namespace)
			continue
		}
		for _, w := range matched {
			for _, p := range svc.Spec.Ports {
				if !declaresPort(w.template.Spec, p.TargetPort, p.Protocol) {
					t.Errorf("%s port %s targets %s/%s, which %s's Pods do not declare", Ref(u), p.Name, p.TargetPort.String(), p.Protocol, w.ref)
				}
			}
		}
	}
}

// The kube-dns Service is what kubelet points every Pod at: it must keep the
// name, namespace, label and ports that the stock cluster DNS has.
func TestKubeDNSServiceIsCompatible(t *testing.T) {
	svc := typed[corev1.Service](t, find(t, "Service", "kube-system", "kube-dns"))
	if svc.Labels["k8s-app"] != "kube-dns" || svc.Spec.Selector["k8s-app"] != "kube-dns" {
		t.Errorf("kube-dns must carry and select k8s-app=kube-dns; labels %v selector %v", svc.Labels, svc.Spec.Selector)
	}
	want := map[string]bool{"53/UDP": false, "53/TCP": false, "9153/TCP": false}
	for _, p := range svc.Spec.Ports {
		want[p.TargetPort.String()+"/"+string(p.Protocol)] = true
		if _, ok := want[strconv.Itoa(int(p.Port))+"/"+string(p.Protocol)]; !ok {
			t.Errorf("kube-dns has an unexpected port %d/%s", p.Port, p.Protocol)
		}
	}
	for port, seen := range want {
		if !seen {
			t.Errorf("kube-dns lacks port %s", port)
		}
	}
}

// The manifests must name the images `make image` builds and tags, or a
// `docker load` + apply would pull images that do not exist.
func TestImagesAreTheOnesMakeImageTags(t *testing.T) {
	want := map[string]string{
		"Deployment outpost-system/outpost-operator": "outpost-dev/outpost-operator:dev",
		"DaemonSet outpost-system/outpost-syncer":    "outpost-dev/outpost-syncer:dev",
		"Deployment kube-system/outpost-coredns":     "outpost-dev/coredns:dev",
	}
	for _, w := range workloads(t) {
		image, ok := want[w.ref]
		if !ok {
			t.Errorf("unexpected workload %s: add its image to this test and to `make image`", w.ref)
			continue
		}
		delete(want, w.ref)
		for _, c := range w.template.Spec.Containers {
			if c.Image != image {
				t.Errorf("%s container %s runs %q, want %q", w.ref, c.Name, c.Image, image)
			}
		}
	}
	for ref := range want {
		t.Errorf("%s renders no %s", installTree, ref)
	}
}

func rendersObject(kind, namespace, name string) bool {
	for _, u := range rendered {
		if u.GetKind() == kind && u.GetNamespace() == namespace && u.GetName() == name {
			return true
		}
	}
	return false
}

func declaresPort(spec corev1.PodSpec, target intstr.IntOrString, proto corev1.Protocol) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol != proto {
				continue
			}
			if (target.Type == intstr.String && p.Name == target.StrVal) ||
				(target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
				return true
			}
		}
	}
	return false
}
