package controller

import (
	"bytes"
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/probe"
)

// caBundleReader returns the PEM bundle under key of a ConfigMap in
// namespace; the error names what is missing.
type caBundleReader func(name, key string) ([]byte, error)

// probeSpec is spec.healthCheck for the prober: the single form becomes one
// check, port names become the ports' targetPorts (a missing port defaults
// to the first port's), and CA bundles are read from their ConfigMaps, so a
// rotated bundle changes the spec and the prober re-checks with it.
func probeSpec(xb *v1alpha1.ExternalBackend, readCA caBundleReader) (probe.Spec, error) {
	hc := xb.Spec.HealthCheck
	spec := probe.Spec{
		HealthyThreshold:   int(hc.HealthyThreshold),
		UnhealthyThreshold: int(hc.UnhealthyThreshold),
	}
	if hc.Interval != nil {
		spec.Interval = hc.Interval.Duration
	}
	if hc.Timeout != nil {
		spec.Timeout = hc.Timeout.Duration
	}
	if len(hc.Checks) == 0 {
		single := probe.Check{
			Field:     "spec.healthCheck",
			Type:      probe.Type(hc.Type),
			Port:      int(hc.Port),
			Path:      hc.Path,
			VerifyTLS: hc.VerifyCertificate != nil && *hc.VerifyCertificate,
		}
		if single.Port == 0 {
			single.Port = defaultProbePort(xb)
		}
		spec.Checks = []probe.Check{single}
		return spec, nil
	}
	for i, c := range hc.Checks {
		field := fmt.Sprintf("spec.healthCheck.checks[%d]", i)
		port, err := checkPort(xb, c.Port)
		if err != nil {
			return probe.Spec{}, fmt.Errorf("%s.port: %w", field, err)
		}
		pc := probe.Check{Field: field, Type: probe.Type(c.Type), Port: port}
		if h := c.HTTP; h != nil {
			pc.Path, pc.ExpectedStatuses = h.Path, h.ExpectedStatuses
			if len(h.Headers) > 0 {
				pc.Header = http.Header{}
				for _, hd := range h.Headers {
					pc.Header.Add(hd.Name, hd.Value)
				}
			}
		}
		if t := c.TLS; t != nil {
			pc.TLS, pc.ServerName = true, t.ServerName
			pc.VerifyTLS = t.VerifyCertificate != nil && *t.VerifyCertificate
			if cm := t.CAConfigMap; cm != nil {
				key := cm.Key
				if key == "" {
					key = v1alpha1.DefaultCAKey
				}
				if pc.RootCAs, err = readCA(cm.Name, key); err != nil {
					return probe.Spec{}, fmt.Errorf("%s.tls.caConfigMap: %w", field, err)
				}
			}
		}
		if g := c.GRPC; g != nil {
			pc.GRPCService = g.Service
		}
		if d := c.DNS; d != nil {
			pc.DNSName, pc.DNSType = d.Name, d.Type
		}
		spec.Checks = append(spec.Checks, pc)
	}
	return spec, nil
}

// checkPort resolves a check's port: a number, the targetPort of the
// spec.ports entry of that name, or by default the first port's.
func checkPort(xb *v1alpha1.ExternalBackend, port *intstr.IntOrString) (int, error) {
	switch {
	case port == nil:
		return defaultProbePort(xb), nil
	case port.Type == intstr.Int:
		return port.IntValue(), nil
	}
	for _, p := range xb.Spec.Ports {
		if p.Name == port.StrVal {
			return int(desired.TargetPort(p)), nil
		}
	}
	return 0, fmt.Errorf("no port named %q in spec.ports; use one of their names or a number", port.StrVal)
}

func defaultProbePort(xb *v1alpha1.ExternalBackend) int {
	if len(xb.Spec.Ports) == 0 {
		return 0 // the prober refuses it, naming the port field
	}
	return int(desired.TargetPort(xb.Spec.Ports[0]))
}

// caBundleReader reads CA bundles through the manager's cache, whose watch
// on ConfigMaps also wakes the backends using one (backendsUsingConfigMap).
func (r *ExternalBackendReconciler) caBundleReader(ctx context.Context, namespace string) caBundleReader {
	return func(name, key string) ([]byte, error) {
		cm := &corev1.ConfigMap{}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("ConfigMap %s/%s not found; create it with the CA bundle under %q", namespace, name, key)
			}
			return nil, fmt.Errorf("read ConfigMap %s/%s: %w", namespace, name, err)
		}
		var pem []byte
		if v, ok := cm.Data[key]; ok {
			pem = []byte(v)
		} else if pem, ok = cm.BinaryData[key]; !ok {
			return nil, fmt.Errorf("ConfigMap %s/%s has no key %q", namespace, name, key)
		}
		if len(bytes.TrimSpace(pem)) == 0 {
			// Not "no CA": the check would then trust the system roots,
			// or verify nothing, where the user asked for this CA. (The
			// operator's cache empties values that hold no certificate.)
			return nil, fmt.Errorf("ConfigMap %s/%s: %q holds no PEM certificate", namespace, name, key)
		}
		return pem, nil
	}
}

// caConfigMapIndex indexes ExternalBackends by the ConfigMaps their checks
// read CA bundles from.
const caConfigMapIndex = "spec.healthCheck.checks.tls.caConfigMap.name"

func indexCAConfigMaps(mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ExternalBackend{}, caConfigMapIndex, func(obj client.Object) []string {
		hc := obj.(*v1alpha1.ExternalBackend).Spec.HealthCheck
		if hc == nil {
			return nil
		}
		var names []string
		for _, c := range hc.Checks {
			if c.TLS != nil && c.TLS.CAConfigMap != nil {
				names = append(names, c.TLS.CAConfigMap.Name)
			}
		}
		return names
	})
}

// backendsUsingConfigMap maps a ConfigMap event to the backends of its
// namespace whose checks read it, so a created, rotated or deleted CA
// bundle reaches their probes without waiting for a resync.
func (r *ExternalBackendReconciler) backendsUsingConfigMap(ctx context.Context, obj client.Object) []reconcile.Request {
	var list v1alpha1.ExternalBackendList
	if err := r.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace()), client.MatchingFields{caConfigMapIndex: obj.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "listing the ExternalBackends that use a ConfigMap", "configMap", client.ObjectKeyFromObject(obj))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, xb := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&xb)})
	}
	return reqs
}
