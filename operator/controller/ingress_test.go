package controller_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// An ingress controller reads an Ingress, then the backend Service's port and
// its EndpointSlices. This walks the same path for the sample Ingress.
var _ = Describe("The sample Ingress in front of ExternalBackends", func() {
	It("resolves every path to ready endpoints outside the cluster", func() {
		ns := newNamespace()
		for _, file := range []string{"outpost_v1alpha1_externalbackend_external-service-1.yaml", "outpost_v1alpha1_externalbackend_rocketmq.yaml"} {
			xb := loadSample(file, ns)
			Expect(k8s.Create(ctx, xb)).To(Succeed())
			eventuallyCondition(xb, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)
		}
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "networking_v1_ingress_outside.yaml"))
		Expect(err).NotTo(HaveOccurred())
		ing := &networkingv1.Ingress{}
		Expect(yaml.UnmarshalStrict(raw, ing)).To(Succeed())
		ing.Namespace = ns
		Expect(k8s.Create(ctx, ing)).To(Succeed())

		want := map[string]string{ // path -> backend address:port
			"/web":     "203.0.113.21:80",
			"/metrics": "192.168.1.2:9100",
		}
		for _, path := range ing.Spec.Rules[0].HTTP.Paths {
			backend := path.Backend.Service
			svc := &corev1.Service{}
			Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: backend.Name}, svc)).To(Succeed())
			var target *corev1.ServicePort
			for i, p := range svc.Spec.Ports {
				if (backend.Port.Name != "" && p.Name == backend.Port.Name) || (backend.Port.Number != 0 && p.Port == backend.Port.Number) {
					target = &svc.Spec.Ports[i]
				}
			}
			Expect(target).NotTo(BeNil(), "%s: Service %s has no port %+v", path.Path, backend.Name, backend.Port)

			var reachable []string
			for _, slice := range slicesOf(ns, backend.Name) {
				for _, sp := range slice.Ports {
					if *sp.Name != target.Name {
						continue
					}
					for _, ep := range slice.Endpoints {
						if *ep.Conditions.Ready {
							reachable = append(reachable, ep.Addresses[0]+":"+itoa(*sp.Port))
						}
					}
				}
			}
			Expect(reachable).To(ContainElement(want[path.Path]), "path %s", path.Path)
		}
	})
})
