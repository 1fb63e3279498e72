package kubectlplugin

import (
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// importHeader starts the YAML import prints, so that whoever pipes it to
// `kubectl apply -f -` reads what the annotation asks for.
const importHeader = `# ExternalBackends describing existing Services, from kubectl outpost import.
# Each carries the annotation ` + v1alpha1.AdoptAnnotation + `: "true": it asks the operator to
# take over the existing Service of the same name (and its Endpoints) instead
# of reporting ServiceConflict. Review, then: kubectl apply -f -
`

// manifest is xb as a person writes it: no status, no server-set metadata.
func manifest(xb *v1alpha1.ExternalBackend) (map[string]any, error) {
	data, err := json.Marshal(xb)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return m, nil
}

// writeBackends prints xbs as a YAML stream (format "yaml") or as JSON: one
// object, or a v1 List of several, as kubectl get does.
func writeBackends(w io.Writer, format string, xbs []*v1alpha1.ExternalBackend) error {
	objs := make([]map[string]any, 0, len(xbs))
	for _, xb := range xbs {
		m, err := manifest(xb)
		if err != nil {
			return err
		}
		objs = append(objs, m)
	}
	switch format {
	case "yaml":
		if _, err := io.WriteString(w, importHeader); err != nil {
			return err
		}
		for _, m := range objs {
			data, err := yaml.Marshal(m)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "---\n%s", data); err != nil {
				return err
			}
		}
		return nil
	case "json":
		var v any = map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
		if len(objs) == 1 {
			v = objs[0]
		}
		return writeJSON(w, v)
	}
	return fmt.Errorf("--output %q: must be yaml or json", format)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}
