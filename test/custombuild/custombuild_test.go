// Package custombuild tests the path plugin/README.md ("Building your own
// CoreDNS with outpost") gives teams that build their own CoreDNS: CoreDNS'
// source tree, one line in plugin.cfg, go generate, go build. It runs the
// README's commands themselves, so the README cannot drift from what works.
package custombuild

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

const (
	coreDNSModule = "github.com/coredns/coredns"
	// blockMarker is the line in plugin/README.md before the block of
	// commands this test runs.
	blockMarker = "<!-- test/custombuild runs the next block -->"
	// builtBinary is where the README's `go build -o` writes CoreDNS, in
	// the source tree.
	builtBinary = "coredns"
	// The TTLs tell which plugin answered.
	outpostTTL    = 7
	kubernetesTTL = 30
)

// moduleSource is what `go mod download -json` says about a module.
type moduleSource struct {
	Version string
	Dir     string // in the module cache, read-only
	Error   string
}

func TestCustomCoreDNSBuildWithOutpostAnswersFromTheAPIServer(t *testing.T) {
	crlog.SetLogger(logr.Discard()) // envtest logs through controller-runtime
	root := testenv.RepoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "plugin", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	commands, err := markedBlock(string(readme))
	if err != nil {
		t.Fatalf("plugin/README.md: %v", err)
	}
	coreDNS := downloadModule(t, root, coreDNSModule)
	if clone := "--branch " + coreDNS.Version + " "; !strings.Contains(string(readme), clone) {
		t.Fatalf("plugin/README.md's `git clone --branch` names another CoreDNS than %s, the version go.mod requires: update it", coreDNS.Version)
	}

	src := filepath.Join(t.TempDir(), "coredns")
	// CopyFS makes the files writable, as a clone's are.
	if err := os.CopyFS(src, os.DirFS(coreDNS.Dir)); err != nil {
		t.Fatalf("copy CoreDNS %s's source: %v", coreDNS.Version, err)
	}
	runBlock(t, src, commands, "OUTPOST="+root)

	checkOutpostJustBeforeKubernetes(t, generatedDirectives(t, filepath.Join(src, "core", "dnsserver", "zdirectives.go")))
	coredns := filepath.Join(src, builtBinary)
	out, err := exec.Command(coredns, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -plugins: %v\n%s", coredns, err, out)
	}
	if !slices.Contains(strings.Fields(string(out)), "outpost") {
		t.Fatalf("%s -plugins does not list outpost:\n%s", coredns, out)
	}

	checkServes(t, coredns)
}

// markedBlock returns the fenced code block that follows blockMarker in a
// Markdown text.
func markedBlock(markdown string) (string, error) {
	_, after, ok := strings.Cut(markdown, blockMarker+"\n")
	if !ok {
		return "", fmt.Errorf("no line %q before the build commands", blockMarker)
	}
	fence, body, ok := strings.Cut(after, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		return "", fmt.Errorf("the line after %q opens no code block", blockMarker)
	}
	block, _, ok := strings.Cut(body, "```")
	if !ok {
		return "", fmt.Errorf("the code block after %q is not closed", blockMarker)
	}
	return block, nil
}

// downloadModule puts the version of module that root's go.mod selects
// into the module cache (a no-op when it is there) and says where.
func downloadModule(t *testing.T, root, module string) moduleSource {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m moduleSource
	if jsonErr := json.Unmarshal(out, &m); jsonErr != nil || m.Error != "" || err != nil {
		t.Fatalf("go mod download -json %s: %v %s\n%s%s", module, err, m.Error, out, stderr.String())
	}
	return m
}

// runBlock runs commands as a bash script in dir, stopping at the first
// command that fails, as a user pasting them would see it. bash -x echoes
// each command, so a failure shows which one.
func runBlock(t *testing.T, dir, commands string, env ...string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("bash", "-euxo", "pipefail", "-c", commands)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the commands of plugin/README.md failed in %s (%v):\n%s", dir, err, out)
	}
	t.Logf("plugin/README.md's commands took %s", time.Since(start).Round(time.Second))
}

// generatedDirectives is the plugin chain's order that go generate wrote
// into zdirectives.go: the Directives slice's elements.
func generatedDirectives(t *testing.T, path string) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || spec.Names[0].Name != "Directives" || len(spec.Values) != 1 {
			return true
		}
		list, ok := spec.Values[0].(*ast.CompositeLit)
		if !ok {
			return false
		}
		for _, elt := range list.Elts {
			if lit, ok := elt.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				names = append(names, name)
			}
		}
		return false
	})
	if len(names) == 0 {
		t.Fatalf("%s: no Directives list of strings", path)
	}
	return names
}

// checkOutpostJustBeforeKubernetes wants outpost right before kubernetes in
// the chain, where bin/coredns puts it too (plugin/coredns), so that both
// builds answer alike.
func checkOutpostJustBeforeKubernetes(t *testing.T, directives []string) {
	t.Helper()
	i := slices.Index(directives, "outpost")
	if i < 0 || i+1 == len(directives) || directives[i+1] != "kubernetes" {
		t.Fatalf("generated directives: want outpost just before kubernetes, got %v", directives)
	}
}

// checkServes runs coredns with outpost and kubernetes in one server block,
// kubernetes written first, against a real API server, and checks that
// outpost answers a Service with its ClusterIP (its TTL tells it from
// kubernetes': the chain's order is plugin.cfg's) and falls through to
// kubernetes for a pod name.
func checkServes(t *testing.T, coredns string) {
	t.Helper()
	env, cfg := testenv.StartForTest(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := kube.CoreV1().Services("default").Create(t.Context(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	kubeconfig := testenv.AdminKubeconfigFile(t, env, "coredns", "")
	port := loopback.FreePort(t)
	corefile := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(corefile, fmt.Appendf(nil, `.:%d {
    bind 127.0.0.1
    kubernetes cluster.local {
        kubeconfig %[2]s
        pods insecure
        ttl %[3]d
    }
    outpost cluster.local {
        kubeconfig %[2]s
        ttl %[4]d
        fallthrough
    }
}
`, port, kubeconfig, kubernetesTTL, outpostTTL), 0o600); err != nil {
		t.Fatal(err)
	}
	p := process.StartForTest(t, "coredns", coredns, "-conf", corefile)

	server := fmt.Sprintf("127.0.0.1:%d", port)
	for _, want := range []struct {
		name, ip, answeredBy string
		ttl                  uint32
	}{
		{"web.default.svc.cluster.local.", svc.Spec.ClusterIP, "outpost", outpostTTL},
		{"192-0-2-1.default.pod.cluster.local.", "192.0.2.1", "kubernetes, after outpost's fallthrough", kubernetesTTL},
	} {
		p.Eventually(t, 60*time.Second, fmt.Sprintf("%s answered by %s on %s", want.name, want.answeredBy, server), func() error {
			return checkA(server, want.name, want.ip, want.ttl)
		})
	}
}

// checkA asks server for name's A record and wants exactly ip with ttl.
func checkA(server, name, ip string, ttl uint32) error {
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), server)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return fmt.Errorf("want one A record, got %s with %v", dns.RcodeToString[r.Rcode], r.Answer)
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok || a.A.String() != ip || a.Hdr.Ttl != ttl {
		return fmt.Errorf("want %s A %s with TTL %d, got %v", name, ip, ttl, r.Answer[0])
	}
	return nil
}
