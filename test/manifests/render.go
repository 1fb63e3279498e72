// Package manifests renders Outpost's kustomize tree (config/) and applies it
// to an API server the way `kubectl apply --server-side -k` would: Namespaces
// first, CRDs next and established, then everything else. Its tests apply
// config/default to a real kube-apiserver (test/lib/testenv) so that a manifest
// the API server would refuse fails CI instead of a user's first install.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// Render runs the repository's pinned kustomize (hack/tools) on dir, a path
// relative to root, and decodes the output. It execs the same tool `make`
// uses, so the test sees exactly what a user's `kustomize build` produces.
func Render(root, dir string) ([]*unstructured.Unstructured, error) {
	cmd := exec.Command("go", "tool", "-modfile="+filepath.Join(root, "hack", "tools", "go.mod"),
		"kustomize", "build", filepath.Join(root, dir))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w\n%s", dir, err, stderr.Bytes())
	}
	objs, err := Decode(&stdout)
	if err != nil {
		return nil, fmt.Errorf("decode kustomize build %s: %w", dir, err)
	}
	return objs, nil
}

// Decode reads a multi-document YAML stream into objects, skipping empty
// documents.
func Decode(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d has no kind or apiVersion", len(objs)+1)
		}
		objs = append(objs, u)
	}
}

// Stage is the order in which objects must reach the API server.
type Stage int

const (
	// StageNamespaces come first: nothing can be created inside a missing one.
	StageNamespaces Stage = iota
	// StageDefinitions (CRDs) must be established before any custom resource.
	StageDefinitions
	// StageObjects is everything else.
	StageObjects
)

// StageOf tells which stage an object belongs to.
func StageOf(u *unstructured.Unstructured) Stage {
	switch u.GroupVersionKind().GroupKind().String() {
	case "Namespace":
		return StageNamespaces
	case "CustomResourceDefinition.apiextensions.k8s.io":
		return StageDefinitions
	default:
		return StageObjects
	}
}

// Ordered returns objs sorted by stage, keeping the rendered order within one.
func Ordered(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b *unstructured.Unstructured) int { return int(StageOf(a)) - int(StageOf(b)) })
	return out
}

// Ref names an object for messages: Kind namespace/name.
func Ref(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}
