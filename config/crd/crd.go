// Package crd embeds the ExternalBackend CRD that `make manifests` writes to
// bases/, so that another project's envtest suite can install it without a
// path into this module:
//
//	crds, err := crd.CustomResourceDefinitions()
//	env := &envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{CRDs: crds}}
package crd

import (
	_ "embed"
	"fmt"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

//go:embed bases/outpost.dev_externalbackends.yaml
var externalBackends []byte

// CustomResourceDefinitions returns Outpost's CRDs, decoded anew on every
// call so a caller may change its copy.
func CustomResourceDefinitions() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(externalBackends, crd); err != nil {
		return nil, fmt.Errorf("decode the embedded ExternalBackend CRD: %w", err)
	}
	return []*apiextensionsv1.CustomResourceDefinition{crd}, nil
}
