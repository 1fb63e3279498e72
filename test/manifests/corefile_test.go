package manifests

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite config/components/dns/Corefile from Corefile.example")

// config/components/dns/Corefile is a copy (kustomize reads no file outside its
// directory); Corefile.example stays the single source.
func TestClusterCorefileIsTheExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join(root, "Corefile.example"))
	if err != nil {
		missing(t, "Corefile.example (written with the plugin)")
	}
	want := ClusterCorefile(example)
	path := filepath.Join(root, "config", "components", "dns", "Corefile")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("config/components/dns/Corefile is not Corefile.example without its kubeconfig line; run `make coredns-corefile`.\ngot:\n%s\nwant:\n%s", got, want)
	}
}

func TestClusterCorefileDropsOnlyKubeconfig(t *testing.T) {
	in := "# comment\n.:1053 {\n    outpost cluster.local {\n        kubeconfig /tmp/kubeconfig ctx\n        ttl 5\n    }\n}\n"
	want := "# comment\n.:1053 {\n    outpost cluster.local {\n        ttl 5\n    }\n}\n"
	if got := string(ClusterCorefile([]byte(in))); got != want {
		t.Errorf("ClusterCorefile:\n%s\nwant:\n%s", got, want)
	}
}

func TestCorefileListeners(t *testing.T) {
	in := ".:1053 example.org {\n  health localhost:8091 # comment {\n  ready\n  prometheus 127.0.0.1:9253\n}\n"
	got := CorefileListeners([]byte(in))
	want := map[string][]string{"dns": {"1053", "53"}, "health": {"8091"}, "ready": {"8181"}, "prometheus": {"9253"}}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
}

// The CoreDNS Pod must declare and probe the ports its Corefile (the
// rendered ConfigMap) really listens on, or the kube-dns Service and the
// kubelet's probes point at nothing.
func TestCoreDNSPodMatchesItsCorefile(t *testing.T) {
	spec := podSpecOf(t, find(t, "Deployment", "kube-system", "outpost-coredns"))
	var corefile string
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			cm := typed[corev1.ConfigMap](t, find(t, "ConfigMap", "kube-system", v.ConfigMap.Name))
			corefile = cm.Data["Corefile"]
		}
	}
	if corefile == "" {
		t.Fatal("the CoreDNS Deployment mounts no ConfigMap with a Corefile")
	}
	listens := CorefileListeners([]byte(corefile))
	c := spec.Containers[0]
	declared := func(name string) string {
		for _, p := range c.Ports {
			if p.Name == name {
				return strconv.Itoa(int(p.ContainerPort))
			}
		}
		return ""
	}
	for portName, listener := range map[string]string{"dns": "dns", "dns-tcp": "dns", "metrics": "prometheus"} {
		if p := declared(portName); !slices.Contains(listens[listener], p) {
			t.Errorf("container port %s is %q but the Corefile's %s listens on %v", portName, p, listener, listens[listener])
		}
	}
	for probe, listener := range map[*corev1.Probe]string{c.LivenessProbe: "health", c.ReadinessProbe: "ready"} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("CoreDNS has no HTTP probe for its %s plugin", listener)
			continue
		}
		if p := probe.HTTPGet.Port.String(); !slices.Contains(listens[listener], p) {
			t.Errorf("probe on port %s, but the Corefile's %s listens on %v", p, listener, listens[listener])
		}
	}
}
