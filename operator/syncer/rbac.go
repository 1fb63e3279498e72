package syncer

// The syncer's ClusterRole (config/components/datapath/role.yaml) is generated
// from these markers by `make manifests`. It reads what it turns into rules
// (the informers in tracker.go) and reports core/v1 Events through
// client-go's record broadcaster; it never writes an API object.
//
// +kubebuilder:rbac:groups="",resources=services,verbs=list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
