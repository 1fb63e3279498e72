package v1alpha1

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// crdPath is the CRD that controller-gen writes from the markers.
var crdPath = filepath.Join("..", "..", "config", "crd", "bases", "outpost.dev_externalbackends.yaml")

// goDefaults maps every defaulted field of the CRD to the Go constant the
// operator uses for it. The markers cannot name a constant, so this test is
// what keeps the two from drifting apart.
var goDefaults = map[string]struct {
	constant string
	value    any
}{
	"spec.serviceType":                                {"DefaultServiceType", DefaultServiceType},
	"spec.headless":                                   {"DefaultHeadless", DefaultHeadless},
	"spec.sessionAffinity":                            {"DefaultSessionAffinity", DefaultSessionAffinity},
	"spec.ports[].protocol":                           {"DefaultProtocol", DefaultProtocol},
	"spec.resolution.ipFamilies":                      {"DefaultIPFamily", []IPFamily{DefaultIPFamily}},
	"spec.resolution.minTTL":                          {"DefaultMinTTL", DefaultMinTTL},
	"spec.resolution.maxTTL":                          {"DefaultMaxTTL", DefaultMaxTTL},
	"spec.healthCheck.type":                           {"DefaultHealthCheckType", DefaultHealthCheckType},
	"spec.healthCheck.interval":                       {"DefaultHealthCheckInterval", DefaultHealthCheckInterval},
	"spec.healthCheck.timeout":                        {"DefaultHealthCheckTimeout", DefaultHealthCheckTimeout},
	"spec.healthCheck.healthyThreshold":               {"DefaultHealthyThreshold", DefaultHealthyThreshold},
	"spec.healthCheck.unhealthyThreshold":             {"DefaultUnhealthyThreshold", DefaultUnhealthyThreshold},
	"spec.healthCheck.checks[].type":                  {"DefaultHealthCheckType", DefaultHealthCheckType},
	"spec.healthCheck.checks[].http.expectedStatuses": {"DefaultExpectedStatuses", []string{DefaultExpectedStatuses}},
	"spec.healthCheck.checks[].tls.caConfigMap.key":   {"DefaultCAKey", DefaultCAKey},
	"spec.healthCheck.checks[].dns.type":              {"DefaultDNSQueryType", DefaultDNSQueryType},
}

func TestCRDDefaultsAreTheGoConstants(t *testing.T) {
	raw, err := os.ReadFile(crdPath)
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("%s: %v", crdPath, err)
	}
	var schema map[string]any
	for _, v := range crd.Spec.Versions {
		if v.Name == GroupVersion.Version {
			schema = v.Schema.OpenAPIV3Schema
		}
	}
	if schema == nil {
		t.Fatalf("%s has no version %s", crdPath, GroupVersion.Version)
	}
	crdDefaults := map[string]any{}
	collectDefaults(schema, "", crdDefaults)

	for path, crdValue := range crdDefaults {
		want, ok := goDefaults[path]
		if !ok {
			t.Errorf("%s: the CRD defaults it to %v, but no Go constant holds that default; declare one next to the field and list it in goDefaults", path, crdValue)
			continue
		}
		if !sameDefault(crdValue, want.value) {
			t.Errorf("%s: the CRD default %v differs from %s = %v; change the +kubebuilder:default marker or the constant, then run make manifests", path, crdValue, want.constant, want.value)
		}
	}
	for path, want := range goDefaults {
		if _, ok := crdDefaults[path]; !ok {
			t.Errorf("%s: %s has no +kubebuilder:default marker in the CRD", path, want.constant)
		}
	}
}

// TestEveryDefaultConstantIsChecked makes sure a new Default* constant
// cannot skip the comparison above.
func TestEveryDefaultConstantIsChecked(t *testing.T) {
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]bool{}
	for _, d := range goDefaults {
		checked[d.constant] = true
	}
	var declared []string
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				for _, name := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(name.Name, "Default") {
						declared = append(declared, name.Name)
					}
				}
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("found no Default* constants; is the test reading the right directory?")
	}
	for _, name := range declared {
		if !checked[name] {
			t.Errorf("%s is not compared with the CRD; add its field to goDefaults", name)
		}
	}
}

// collectDefaults records the default of every property under node, by
// its path in the object (spec.ports[].protocol).
func collectDefaults(node map[string]any, path string, out map[string]any) {
	if d, ok := node["default"]; ok {
		out[path] = d
	}
	if props, ok := node["properties"].(map[string]any); ok {
		for name, child := range props {
			if child, ok := child.(map[string]any); ok {
				collectDefaults(child, strings.TrimPrefix(path+"."+name, "."), out)
			}
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		collectDefaults(items, path+"[]", out)
	}
}

// sameDefault compares a default as the CRD spells it with a Go value:
// durations by their length ("30m" is 30*time.Minute), the rest by their
// JSON form, the form the API server stores.
func sameDefault(crdValue, goValue any) bool {
	if d, ok := goValue.(time.Duration); ok {
		s, ok := crdValue.(string)
		if !ok {
			return false
		}
		parsed, err := time.ParseDuration(s)
		return err == nil && parsed == d
	}
	a, errA := json.Marshal(crdValue)
	b, errB := json.Marshal(goValue)
	return errA == nil && errB == nil && string(a) == string(b)
}
