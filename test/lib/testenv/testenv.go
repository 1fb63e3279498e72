// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) for Outpost's tests. The binaries come from bin/k8s, built from the
// Go module proxy by `make envtest`; a missing control plane is an error, never
// a skip, so a test run cannot silently test nothing.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/outpost-dev/outpost/test/lib/poll"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DualStackServiceCIDRs is the service range the test API server allocates
// ClusterIPs from: one IPv4 and one IPv6 range, so dual-stack Services work.
const DualStackServiceCIDRs = "10.96.0.0/16,fd00:10:96::/112"

// RepoRoot is the checkout's top directory, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// Build compiles packages of the checkout (paths from its root, such as
// "./plugin/coredns") into out: a file for one package, a directory ending
// in "/" for several. The compiler's messages go to stderr. Suites build
// what they run before their tests, so they never run a stale bin/.
func Build(out string, pkgs ...string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, pkgs...)...)
	cmd.Dir = RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build -o %s %s: %w", out, strings.Join(pkgs, " "), err)
	}
	return nil
}

// Assets returns the directory holding kube-apiserver and etcd.
func Assets() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(RepoRoot(), "bin", "k8s")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("envtest control plane missing (%w): run `make envtest`", err)
		}
	}
	return dir, nil
}

// New returns an environment with Outpost's CRDs installed and a dual-stack
// service range. Callers may adjust it before Start.
func New() (*envtest.Environment, error) {
	assets, err := Assets()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: false,
	}
	env.ControlPlane.GetAPIServer().Configure().
		Set("service-cluster-ip-range", DualStackServiceCIDRs)
	// The data dies with the test: an fsync per write would only measure
	// the machine's disk.
	env.ControlPlane.Etcd = &envtest.Etcd{}
	env.ControlPlane.Etcd.Configure().Set("unsafe-no-fsync", "true")
	return env, nil
}

// Start starts a new environment and returns it with its client config.
func Start() (*envtest.Environment, *rest.Config, error) {
	env, err := New()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("start envtest: %w", err)
	}
	return env, cfg, nil
}

// StartForTest is Start for one test: a control plane that cannot start
// fails tb, and the environment is stopped when tb ends.
func StartForTest(tb testing.TB) (*envtest.Environment, *rest.Config) {
	tb.Helper()
	env, cfg, err := Start()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = env.Stop() })
	return env, cfg
}

// AdminKubeconfig adds a cluster-admin user called name to a started
// environment and returns a kubeconfig for it, for the processes a test or
// `make run` starts (the operator, CoreDNS, the syncer).
func AdminKubeconfig(env *envtest.Environment, name string) ([]byte, error) {
	user, err := env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("add envtest user %s: %w", name, err)
	}
	return user.KubeConfig()
}

// WriteAdminKubeconfig writes AdminKubeconfig(env, name) to path (mode 0600
// when it creates the file). server, when not "", replaces the API
// server's host:port in it: the address of a proxy in front of the API
// server, say.
func WriteAdminKubeconfig(env *envtest.Environment, name, server, path string) error {
	raw, err := AdminKubeconfig(env, name)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return fmt.Errorf("envtest kubeconfig: %w", err)
	}
	if server != "" {
		for _, c := range cfg.Clusters {
			c.Server = "https://" + server
		}
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// AdminKubeconfigFile is WriteAdminKubeconfig for tests: it writes the
// kubeconfig to a file in tb.TempDir(), returns its path, and fails tb on
// error.
func AdminKubeconfigFile(tb testing.TB, env *envtest.Environment, name, server string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := WriteAdminKubeconfig(env, name, server, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// StopAPIServer stops kube-apiserver (etcd stays) and waits until it no
// longer accepts connections; StartAPIServer brings it back, and
// its clients' watches then relist: the new API server's watch cache starts
// past their resource versions. The environment must have been started with
// a CertDir of its own (set before Start): envtest otherwise makes a new
// serving certificate in a new directory on Start, which the kubeconfigs
// handed out before would not trust.
func StopAPIServer(env *envtest.Environment) error {
	api := env.ControlPlane.GetAPIServer()
	// kube-apiserver drains its watches for longer than that; it is then
	// killed, as a crashed one would be (Stop then reports the timeout).
	// Either way it must be gone, which is what is checked.
	api.StopTimeout = 5 * time.Second
	stopErr := api.Stop()
	addr := api.SecureServing.ListenAddr.HostPort()
	if err := poll.Until(context.Background(), 100*time.Millisecond, 30*time.Second, "kube-apiserver gone", func() error {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return errors.New("kube-apiserver still accepts connections on " + addr)
		}
		return nil
	}); err != nil {
		return errors.Join(err, stopErr)
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer. It may
// take minutes: over tens of thousands of objects it fills its watch cache
// before it serves, far beyond envtest's default start timeout of 20 s.
func StartAPIServer(env *envtest.Environment) error {
	api := env.ControlPlane.GetAPIServer()
	api.StartTimeout = 5 * time.Minute
	if err := api.Start(); err != nil {
		return fmt.Errorf("start kube-apiserver again: %w", err)
	}
	return nil
}
