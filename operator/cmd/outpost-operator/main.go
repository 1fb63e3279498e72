// Command outpost-operator runs the ExternalBackend controller.
package main

import (
	"flag"
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/outpost-dev/outpost/internal/listflag"
	"github.com/outpost-dev/outpost/internal/version"
	"github.com/outpost-dev/outpost/operator"
)

func main() {
	opts := operator.DefaultOptions()
	flag.StringVar(&opts.MetricsBindAddress, "metrics-bind-address", opts.MetricsBindAddress, "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	flag.BoolVar(&opts.MetricsSecure, "metrics-secure", opts.MetricsSecure, "Serve metrics over HTTPS to callers the API server authenticates and authorizes (GET on the /metrics non-resource URL); false serves plain HTTP to anyone.")
	flag.StringVar(&opts.HealthProbeBindAddress, "health-probe-bind-address", opts.HealthProbeBindAddress, "Address the /healthz and /readyz endpoints bind to.")
	flag.BoolVar(&opts.LeaderElection, "leader-elect", opts.LeaderElection, "Elect a leader so that only one replica reconciles.")
	flag.StringVar(&opts.LeaderElectionNS, "leader-election-namespace", opts.LeaderElectionNS, "Namespace of the leader election lease; defaults to the pod's namespace.")
	flag.BoolVar(&opts.WriteEndpoints, "write-endpoints", opts.WriteEndpoints, "Also write legacy Endpoints (read by Prometheus' endpoints discovery and kubectl get endpoints).")
	flag.StringVar(&opts.DeniedCIDRs, "denied-cidrs", opts.DeniedCIDRs, "Comma-separated CIDRs no ExternalBackend may point at.")
	flag.StringVar(&opts.ServiceCIDRs, "service-cidr", opts.ServiceCIDRs, "The cluster's Service CIDRs (comma-separated); denied as backend addresses.")
	flag.StringVar(&opts.PodCIDRs, "pod-cidr", opts.PodCIDRs, "The cluster's Pod CIDRs (comma-separated); denied as backend addresses.")
	flag.BoolVar(&opts.LearnClusterRanges, "learn-cluster-ranges", opts.LearnClusterRanges, "Deny the ranges of the cluster's ServiceCIDRs, Nodes (pod CIDRs and addresses) and API server endpoints, watched so they stay current.")
	flag.StringVar(&opts.ClusterDomain, "cluster-domain", opts.ClusterDomain, "The cluster's DNS domain; an alias may point inside it only at a Service of its own namespace.")
	flag.StringVar(&opts.DeniedHostnames, "denied-hostnames", opts.DeniedHostnames, "Comma-separated host names no alias (spec.externalName) may point at.")
	flag.Var(listflag.Strings(&opts.DNSServers), "dns-server", "DNS server (HOST[:PORT]) for the names in spec.addresses; repeat or comma-separate for several. Default: the nameservers of /etc/resolv.conf.")
	flag.StringVar(&opts.AllowedServiceTypes, "allowed-service-types", opts.AllowedServiceTypes, "Comma-separated spec.serviceType values ExternalBackends may have (ClusterIP, NodePort, LoadBalancer); others get no Service.")
	flag.IntVar(&opts.MaxEndpointsPerBackend, "max-endpoints-per-backend", opts.MaxEndpointsPerBackend, "Distinct addresses considered per ExternalBackend (the first in spec order); 0 for no bound.")
	flag.IntVar(&opts.MaxRecordsPerAnswer, "max-records-per-answer", opts.MaxRecordsPerAnswer, "Addresses taken from one DNS answer (the smallest, so the choice is stable); 0 for no bound.")
	flag.IntVar(&opts.MaxEndpointPorts, "max-endpoint-ports", opts.MaxEndpointPorts, "Endpoints times ports per ExternalBackend; a backend above it gets no Service. 0 for no bound.")
	flag.IntVar(&opts.MaxConcurrentReconciles, "max-concurrent-reconciles", opts.MaxConcurrentReconciles, "How many ExternalBackends are reconciled at once.")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse() // --kubeconfig is registered by controller-runtime's config package.

	build := version.Get()
	if *showVersion {
		fmt.Println(build.String("outpost-operator"))
		return
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	log.Info("outpost-operator", build.KeysAndValues()...)
	// Served with the manager's metrics on --metrics-bind-address.
	crmetrics.Registry.MustRegister(build.Collector())

	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "load kubeconfig")
		os.Exit(1)
	}
	mgr, err := operator.New(cfg, opts)
	if err != nil {
		log.Error(err, "set up operator")
		os.Exit(1)
	}
	log.Info("starting operator", "writeEndpoints", opts.WriteEndpoints, "deniedCIDRs", opts.DeniedCIDRs, "learnClusterRanges", opts.LearnClusterRanges, "clusterDomain", opts.ClusterDomain)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "operator stopped")
		os.Exit(1)
	}
}
