package outpost

// The ClusterRole of CoreDNS with this plugin
// (config/components/dns/role.yaml) is generated from these markers by
// `make manifests`: the list-watches of controller.go. Unlike the kubernetes
// plugin it needs no Pods.
//
// +kubebuilder:rbac:groups="",resources=services;namespaces,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch
