// Package operator wires the ExternalBackend controller into a
// controller-runtime manager. The binary's main only parses flags into
// Options; tests build the same manager with New.
package operator

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/internal/listflag"
	"github.com/outpost-dev/outpost/operator/clusterranges"
	"github.com/outpost-dev/outpost/operator/controller"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/notify"
	"github.com/outpost-dev/outpost/operator/policy"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
	"github.com/outpost-dev/outpost/operator/status"
)

// Options are the operator's settings, one per flag.
type Options struct {
	MetricsBindAddress     string
	HealthProbeBindAddress string
	LeaderElection         bool
	LeaderElectionID       string
	LeaderElectionNS       string
	WriteEndpoints         bool
	DeniedCIDRs            string
	ServiceCIDRs           string
	PodCIDRs               string
	// ClusterDomain is the cluster's DNS domain: no alias may point
	// inside it but at a Service of its own namespace.
	ClusterDomain string
	// DeniedHostnames are names no alias may point at (comma-separated).
	DeniedHostnames string
	// LearnClusterRanges denies the ranges the cluster's ServiceCIDRs,
	// Nodes and API server endpoints hold, kept current by watching them.
	LearnClusterRanges bool
	// DNSServers answer the operator's queries for DNS names in
	// spec.addresses (--dns-server, HOST[:PORT]); empty means the
	// nameservers of /etc/resolv.conf.
	DNSServers []string
	// SeveralPerProcess lets more than one operator run in one process, as
	// test suites do (each against its own API server): controller-runtime
	// otherwise refuses a second controller of the same name, because the
	// two would report under the same metric labels.
	SeveralPerProcess bool
	// MaxConcurrentReconciles bounds how many ExternalBackends are
	// reconciled at once.
	MaxConcurrentReconciles int
	// MetricsSecure serves the metrics over HTTPS, to callers the API
	// server authenticates (TokenReview) and authorizes (SubjectAccessReview
	// for GET /metrics) only; false serves plain HTTP to anyone.
	MetricsSecure bool
	// AllowedServiceTypes (comma-separated) are the spec.serviceType values
	// the cluster accepts; a backend of another type writes no Service.
	AllowedServiceTypes string
	// MaxEndpointsPerBackend bounds the distinct addresses of one backend
	// that are considered (the first in spec order); 0 for no bound.
	MaxEndpointsPerBackend int
	// MaxRecordsPerAnswer bounds the addresses taken from one DNS answer
	// (the smallest); 0 for no bound.
	MaxRecordsPerAnswer int
	// MaxEndpointPorts bounds endpoints times ports of one backend; one
	// above it writes nothing. 0 for no bound.
	MaxEndpointPorts int
}

// The limits' defaults: far above what a hand-written backend needs, far
// below what makes one tenant's backend a burden on the API server, the
// operator's memory or every node's datapath.
const (
	DefaultAllowedServiceTypes    = "ClusterIP,NodePort,LoadBalancer"
	DefaultMaxEndpointsPerBackend = 1000
	DefaultMaxRecordsPerAnswer    = 100
	DefaultMaxEndpointPorts       = 10000
)

// DefaultOptions are the flag defaults.
func DefaultOptions() Options {
	return Options{
		MetricsBindAddress:      ":8443",
		MetricsSecure:           true,
		AllowedServiceTypes:     DefaultAllowedServiceTypes,
		MaxEndpointsPerBackend:  DefaultMaxEndpointsPerBackend,
		MaxRecordsPerAnswer:     DefaultMaxRecordsPerAnswer,
		MaxEndpointPorts:        DefaultMaxEndpointPorts,
		HealthProbeBindAddress:  ":8081",
		LeaderElectionID:        "outpost-operator.outpost.dev",
		WriteEndpoints:          true,
		DeniedCIDRs:             policy.DefaultDeniedCIDRs,
		ClusterDomain:           policy.DefaultClusterDomain,
		DeniedHostnames:         policy.DefaultDeniedHostnames,
		LearnClusterRanges:      true,
		MaxConcurrentReconciles: 4,
	}
}

// Scheme knows the built-in types and ExternalBackend.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Run runs the operator against cfg's API server until ctx ends, then
// stops it and returns: the one call another project's envtest suite needs
// (install the CRD with config/crd.CustomResourceDefinitions first). An
// error is one of setting it up or of running it.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// New returns a manager running the ExternalBackend controller.
func New(cfg *rest.Config, opts Options) (manager.Manager, error) {
	addressPolicy, err := policy.Parse(opts.DeniedCIDRs, opts.ServiceCIDRs, opts.PodCIDRs)
	if err != nil {
		return nil, err
	}
	if err := addressPolicy.SetAliasRules(opts.ClusterDomain, opts.DeniedHostnames); err != nil {
		return nil, err
	}
	limits, err := opts.limits()
	if err != nil {
		return nil, err
	}
	metrics := metricsserver.Options{BindAddress: opts.MetricsBindAddress}
	if opts.MetricsSecure {
		// A self-signed certificate unless one is mounted; who may read is
		// the API server's call, as for the kubelet's and kube-proxy's metrics.
		metrics.SecureServing = true
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Metrics:                 metrics,
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        opts.LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNS,
		Cache:                   cacheOptions(),
		Controller:              config.Controller{SkipNameValidation: ptr.To(opts.SeveralPerProcess)},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	servers, err := resolve.Servers(opts.DNSServers)
	if err != nil {
		return nil, fmt.Errorf("--dns-server: %w", err)
	}
	resolver, err := resolve.NewResolver(servers, 0)
	if err != nil {
		return nil, fmt.Errorf("--dns-server: %w", err)
	}
	// The resolver and the prober run beside the reconciler, never inside
	// it; they wake it through one source when an answer or a health changes.
	wake := notify.NewSource()
	refresher, err := resolve.NewRefresher(resolve.Options{Resolver: resolver, Notify: wake.Notify, MaxRecordsPerAnswer: opts.MaxRecordsPerAnswer})
	if err != nil {
		return nil, err
	}
	prober := probe.NewProber(probe.Options{Notify: wake.Notify})
	if opts.LearnClusterRanges {
		// A changed range may deny an address published under the old
		// set, or allow one denied: every backend is checked again.
		recheckAll := func(ctx context.Context) {
			var all v1alpha1.ExternalBackendList
			if err := mgr.GetClient().List(ctx, &all, client.UnsafeDisableDeepCopy); err != nil {
				mgr.GetLogger().Error(err, "list ExternalBackends to re-check them against the cluster's new ranges")
				return
			}
			for i := range all.Items {
				wake.Notify(client.ObjectKeyFromObject(&all.Items[i]))
			}
		}
		if _, err := clusterranges.Setup(mgr, clusterranges.Options{Policy: addressPolicy, OnChange: recheckAll}); err != nil {
			return nil, fmt.Errorf("learn the cluster's ranges: %w", err)
		}
	}
	for _, runnable := range []manager.Runnable{refresher, prober} {
		if err := mgr.Add(runnable); err != nil {
			return nil, err
		}
	}
	r := &controller.ExternalBackendReconciler{
		Refresher: refresher,
		Prober:    prober,
		Wake:      wake,
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder(desired.FieldManager),
		Policy:    addressPolicy,
		Options:   desired.Options{WriteEndpoints: opts.WriteEndpoints},
		Limits:    limits,
	}
	if err := r.SetupWithManager(mgr, opts.MaxConcurrentReconciles); err != nil {
		return nil, fmt.Errorf("set up ExternalBackend controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("caches-synced", cachesSynced(mgr.GetCache())); err != nil {
		return nil, err
	}
	return mgr, nil
}

// limits are the per-backend bounds of the flags.
func (o Options) limits() (status.Limits, error) {
	types, err := listflag.Parse(o.AllowedServiceTypes, func(s string) (corev1.ServiceType, error) {
		switch t := corev1.ServiceType(s); t {
		case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
			return t, nil
		}
		return "", fmt.Errorf("%s: %q is not a Service type an ExternalBackend can have (ClusterIP, NodePort, LoadBalancer)", status.FlagAllowedServiceTypes, s)
	})
	if err != nil {
		return status.Limits{}, err
	}
	if len(types) == 0 {
		return status.Limits{}, fmt.Errorf("%s: empty; name at least one of ClusterIP, NodePort, LoadBalancer", status.FlagAllowedServiceTypes)
	}
	return status.Limits{
		AllowedServiceTypes: types,
		MaxEndpoints:        o.MaxEndpointsPerBackend,
		MaxEndpointPorts:    o.MaxEndpointPorts,
	}, nil
}

// cacheOptions keep the operator's memory proportional to what it owns: the
// slices and Endpoints it wrote, in full, of every other Service only the
// metadata needed to notice a name conflict, and of ConfigMaps (watched for
// the CA bundles of health checks) only certificates.
func cacheOptions() cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&discoveryv1.EndpointSlice{}: {
				Label: labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: desired.SliceManagedBy}),
			},
			&corev1.Endpoints{}: { //nolint:staticcheck // legacy Endpoints are written on purpose
				Label: labels.SelectorFromSet(labels.Set{desired.LabelManagedBy: desired.ManagedBy}),
			},
			&corev1.Service{}:   {Transform: shrinkForeignService},
			&corev1.ConfigMap{}: {Transform: keepCertificates},
		},
	}
}

// keepCertificates keeps of a ConfigMap its identity and the values that
// hold a PEM certificate, the only ones a health check's tls.caConfigMap
// can use: a cluster's ConfigMaps also hold configuration files and
// dashboards of megabytes, which the operator would otherwise cache. The
// other values are emptied, their keys kept, so that a check naming one is
// still told it holds no PEM certificate rather than that it is missing.
func keepCertificates(obj any) (any, error) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return obj, nil
	}
	out := &corev1.ConfigMap{
		TypeMeta: cm.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            cm.Name,
			Namespace:       cm.Namespace,
			UID:             cm.UID,
			ResourceVersion: cm.ResourceVersion,
		},
	}
	if cm.Data != nil {
		out.Data = make(map[string]string, len(cm.Data))
		for k, v := range cm.Data {
			if !strings.Contains(v, pemCertificate) {
				v = ""
			}
			out.Data[k] = v
		}
	}
	if cm.BinaryData != nil {
		out.BinaryData = make(map[string][]byte, len(cm.BinaryData))
		for k, v := range cm.BinaryData {
			if !bytes.Contains(v, []byte(pemCertificate)) {
				v = nil
			}
			out.BinaryData[k] = v
		}
	}
	return out, nil
}

const pemCertificate = "-----BEGIN CERTIFICATE-----"

// shrinkForeignService drops everything but identity and ownership from
// Services the operator does not manage.
func shrinkForeignService(obj any) (any, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok || svc.Labels[desired.LabelManagedBy] == desired.ManagedBy {
		return obj, nil
	}
	return &corev1.Service{
		TypeMeta: svc.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name:            svc.Name,
			Namespace:       svc.Namespace,
			UID:             svc.UID,
			ResourceVersion: svc.ResourceVersion,
			OwnerReferences: svc.OwnerReferences,
		},
	}, nil
}
