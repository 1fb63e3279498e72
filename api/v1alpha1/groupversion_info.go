// Package v1alpha1 holds the ExternalBackend API, group outpost.dev.
//
// The Go types are the single source of truth: markers generate the CRD
// (validation, CEL rules, printer columns) and the deepcopy code.
//
// +kubebuilder:object:generate=true
// +groupName=outpost.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the ExternalBackend API.
	GroupVersion = schema.GroupVersion{Group: "outpost.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
