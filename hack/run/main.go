// Command run is `make run`: it brings up a local control plane from bin/k8s
// (or uses the cluster in $KUBECONFIG), installs the CRD, starts the operator
// and bin/coredns with the outpost plugin on 127.0.0.1:1053, applies
// config/samples, and shows what to try with answers checked beforehand,
// each component's metrics endpoint among them. As
// root it also runs bin/outpost-syncer in a network-namespace sandbox with
// a server at svc1's backend address (package sandbox) and shows a curl
// through svc1's ClusterIP. Ctrl-C stops everything it started and removes
// its temporary files and namespaces.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/miekg/dns"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/process"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

func main() {
	bin := flag.String("bin", filepath.Join(testenv.RepoRoot(), "bin"), "Directory holding the built binaries.")
	flag.Parse()
	// --kubeconfig is controller-runtime's flag; with it or $KUBECONFIG set,
	// the existing cluster is used instead of a local control plane.
	kubeconfig := os.Getenv("KUBECONFIG")
	if f := flag.Lookup("kubeconfig"); f != nil && f.Value.String() != "" {
		kubeconfig = f.Value.String()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, kubeconfig, *bin); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}

// step prints numbered progress so a new user sees what is happening.
type step struct{ n, total int }

func (s *step) start(format string, args ...any) func() {
	s.n++
	begin := time.Now()
	fmt.Printf("[%d/%d] %s ... ", s.n, s.total, fmt.Sprintf(format, args...))
	return func() { fmt.Printf("done (%.1fs)\n", time.Since(begin).Seconds()) }
}

func run(ctx context.Context, kubeconfig, bin string) error {
	workDir := filepath.Join(bin, "run")
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	steps := &step{total: 6}

	var cfg *rest.Config
	if kubeconfig != "" {
		done := steps.start("using the cluster in %s", kubeconfig)
		c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return fmt.Errorf("load %s: %w", kubeconfig, err)
		}
		cfg = c
		done()
	} else {
		done := steps.start("starting a local control plane (kube-apiserver + etcd from bin/k8s)")
		env, err := testenv.New()
		if err != nil {
			return err
		}
		if cfg, err = env.Start(); err != nil {
			return err
		}
		defer func() {
			fmt.Println("stopping the control plane")
			_ = env.Stop()
		}()
		kubeconfig = filepath.Join(workDir, "kubeconfig")
		if err := testenv.WriteAdminKubeconfig(env, "outpost-admin", "", kubeconfig); err != nil {
			return err
		}
		done()
		fmt.Printf("      API server %s, kubeconfig %s\n", cfg.Host, kubeconfig)
	}

	k8s, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		return err
	}
	done := steps.start("installing the ExternalBackend CRD")
	if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
	}); err != nil {
		return err
	}
	done()

	done = steps.start("starting bin/outpost-operator (log: %s)", filepath.Join(workDir, "operator.log"))
	operator, err := process.Start(filepath.Join(workDir, "operator.log"), filepath.Join(bin, "outpost-operator"),
		"--kubeconfig", kubeconfig, "--health-probe-bind-address", "127.0.0.1:18081",
		// Plain HTTP on loopback, so curl needs no token; in a cluster the
		// metrics are HTTPS for authorized callers only (config/monitoring).
		"--metrics-bind-address", operatorMetricsAddr, "--metrics-secure=false")
	if err != nil {
		return err
	}
	defer operator.Stop()
	done()

	done = steps.start("applying config/samples and waiting until they are Ready")
	names, err := applySamples(ctx, k8s)
	if err != nil {
		return err
	}
	if err := waitReady(ctx, k8s, operator, names); err != nil {
		return err
	}
	done()

	done = steps.start("starting bin/coredns with the outpost plugin on %s (log: %s)", dnsAddr, filepath.Join(workDir, "coredns.log"))
	corefile := filepath.Join(workDir, "Corefile")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(corefileTemplate, kubeconfig, corednsMetricsAddr)), 0o644); err != nil {
		return err
	}
	coredns, err := process.Start(filepath.Join(workDir, "coredns.log"), filepath.Join(bin, "coredns"), "-conf", corefile)
	if err != nil {
		return err
	}
	defer coredns.Stop()
	digs, err := dnsExamples(ctx, k8s, coredns)
	if err != nil {
		return err
	}
	done()

	box, err := startSandbox(ctx, steps, k8s, bin, workDir, kubeconfig)
	if err != nil {
		return err
	}
	if box != nil {
		defer func() {
			fmt.Println("removing the network-namespace sandbox")
			box.Close()
		}()
	}

	if err := printBackends(ctx, k8s); err != nil {
		return err
	}
	fmt.Println("\nDNS answers from bin/coredns (the outpost plugin), checked just now:")
	for _, d := range digs {
		fmt.Printf("  %-75s # %s\n", d.command, d.answer)
	}
	if box != nil {
		fmt.Println("\nThrough svc1's ClusterIP and bin/outpost-syncer's iptables rules in the sandbox node, checked just now:")
		fmt.Printf("  %-75s # %s\n", box.Command, sandboxBackend.Greeting())
	}
	examples := metricsExamples(box != nil)
	if err := checkMetrics(ctx, examples); err != nil {
		return err
	}
	fmt.Println("\nMetrics (Prometheus text format), served just now, with a PromQL query to try on each:")
	for _, m := range examples {
		fmt.Printf("  %-9s curl -s %s | grep ^%s\n  %-9s %s\n", m.component, m.url, m.metric, "", m.query)
	}
	fmt.Printf(`
Try:
  export KUBECONFIG=%s
  kubectl get externalbackends -A          # or: kubectl get xb
  kubectl get svc,endpointslices,endpoints -n default
  kubectl describe xb svc1
  kubectl get ingress outside -o wide        # an Ingress whose backends are ExternalBackends
  kubectl apply -f config/samples/          # edit a sample and watch the slices follow

Press Ctrl-C to stop everything.
`, kubeconfig)
	<-ctx.Done()
	return nil
}

// dnsAddr is where `make run` serves cluster DNS.
const dnsAddr = "127.0.0.1:1053"

// Where `make run` serves metrics; the Corefile's prometheus line is the
// CoreDNS one.
const (
	operatorMetricsAddr = "127.0.0.1:18080"
	corednsMetricsAddr  = "127.0.0.1:19153"
	syncerMetricsAddr   = "127.0.0.1:18402"
)

// metricsExample is one component's metrics endpoint, a metric it serves
// and a PromQL query over it (README, "Monitoring").
type metricsExample struct{ component, url, metric, query string }

func metricsExamples(withSyncer bool) []metricsExample {
	out := []metricsExample{
		{"operator", "http://" + operatorMetricsAddr + "/metrics", "outpost_backend_endpoints",
			`max by (namespace, name) (outpost_backend_endpoints{state="ready"}) == 0   # backends with no ready endpoint`},
		{"coredns", "http://" + corednsMetricsAddr + "/metrics", "coredns_outpost_requests_total",
			`sum by (result) (rate(coredns_outpost_requests_total[5m]))   # answers by result`},
	}
	if withSyncer {
		out = append(out, metricsExample{"syncer", "http://" + syncerMetricsAddr + "/metrics", "outpost_syncer_last_successful_sync_timestamp_seconds",
			`time() - outpost_syncer_last_successful_sync_timestamp_seconds   # seconds since the rules were last applied`})
	}
	return out
}

// checkMetrics waits until each endpoint serves its metric, so every
// printed command shows something.
func checkMetrics(ctx context.Context, examples []metricsExample) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, m := range examples {
		if err := poll.Until(ctx, 200*time.Millisecond, 30*time.Second, fmt.Sprintf("%s serving %s on %s", m.component, m.metric, m.url), func() error {
			resp, err := client.Get(m.url)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", m.url, resp.Status)
			}
			if !bytes.Contains(body, []byte("\n"+m.metric)) {
				return fmt.Errorf("%s has no %s", m.url, m.metric)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// corefileTemplate serves the cluster zone and reverse zones from the local
// API server; names outside the cluster are not forwarded anywhere.
const corefileTemplate = `.:1053 {
    bind 127.0.0.1
    errors
    health 127.0.0.1:18082
    ready 127.0.0.1:18181
    outpost cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s
        fallthrough in-addr.arpa ip6.arpa
    }
    prometheus %s
}
`

type digExample struct{ command, answer string }

// dnsExamples waits until CoreDNS answers for the samples and returns dig
// commands with the answers they got, so every printed command works.
func dnsExamples(ctx context.Context, k8s client.Client, coredns *process.Process) ([]digExample, error) {
	svc := &corev1.Service{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "db"}, svc); err != nil {
		return nil, err
	}
	queries := []struct {
		name  string
		qtype uint16
	}{
		{"db.default.svc.cluster.local.", dns.TypeA},
		{"_port7064._tcp.svc1.default.svc.cluster.local.", dns.TypeSRV},
		{"testdb.default.svc.cluster.local.", dns.TypeA},
		{"rocketmq.default.svc.cluster.local.", dns.TypeA},
	}
	if reverse, err := dns.ReverseAddr(svc.Spec.ClusterIP); err == nil {
		queries = append(queries, struct {
			name  string
			qtype uint16
		}{reverse, dns.TypePTR})
	}
	var out []digExample
	for _, q := range queries {
		var answer string
		if err := coredns.Until(ctx, 200*time.Millisecond, 30*time.Second,
			fmt.Sprintf("CoreDNS answering %s %s (see its log)", q.name, dns.TypeToString[q.qtype]),
			func() (err error) { answer, err = ask(q.name, q.qtype); return err }); err != nil {
			return nil, err
		}
		cmd := fmt.Sprintf("dig @127.0.0.1 -p 1053 %s %s +short", strings.TrimSuffix(q.name, "."), dns.TypeToString[q.qtype])
		if q.qtype == dns.TypePTR {
			cmd = fmt.Sprintf("dig @127.0.0.1 -p 1053 -x %s +short", svc.Spec.ClusterIP)
		}
		out = append(out, digExample{cmd, answer})
	}
	return out, nil
}

// ask queries the local CoreDNS and returns the answer in dig +short style.
func ask(name string, qtype uint16) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	r, err := dns.Exchange(m, dnsAddr)
	if err != nil {
		return "", err
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		return "", fmt.Errorf("rcode %s with %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	var parts []string
	for _, rr := range r.Answer {
		fields := strings.Fields(rr.String())
		parts = append(parts, strings.Join(fields[4:], " "))
	}
	return strings.Join(parts, ", "), nil
}

// applySamples applies every object in config/samples/ and returns the
// ExternalBackends among them.
func applySamples(ctx context.Context, k8s client.Client) ([]client.ObjectKey, error) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var backends []client.ObjectKey
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(raw, &obj.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if err := k8s.Patch(ctx, obj, client.Apply, client.FieldOwner("outpost-run"), client.ForceOwnership); err != nil { //nolint:staticcheck // unstructured objects, not apply configurations
			return nil, fmt.Errorf("apply %s: %w", f, err)
		}
		if obj.GetKind() == "ExternalBackend" {
			backends = append(backends, client.ObjectKeyFromObject(obj))
		}
	}
	return backends, nil
}

// waitReady waits until the operator has given every sample a Ready
// condition.
func waitReady(ctx context.Context, k8s client.Client, operator *process.Process, keys []client.ObjectKey) error {
	return operator.Until(ctx, 200*time.Millisecond, time.Minute, "a Ready condition on every sample (see the operator log)", func() error {
		ready := 0
		for _, key := range keys {
			xb := &v1alpha1.ExternalBackend{}
			if err := k8s.Get(ctx, key, xb); err == nil && meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady) != nil {
				ready++
			}
		}
		if ready < len(keys) {
			return fmt.Errorf("%d of %d samples have no Ready condition yet", len(keys)-ready, len(keys))
		}
		return nil
	})
}

func printBackends(ctx context.Context, k8s client.Client) error {
	list := &v1alpha1.ExternalBackendList{}
	if err := k8s.List(ctx, list); err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nNAMESPACE\tNAME\tMODE\tREADY\tSERVICE\tCLUSTER-IP / EXTERNAL NAME\tCONDITION")
	for _, xb := range list.Items {
		svc := &corev1.Service{}
		target := "-"
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(&xb), svc); err == nil {
			target = strings.Join(svc.Spec.ClusterIPs, ",")
			if svc.Spec.Type == corev1.ServiceTypeExternalName {
				target = svc.Spec.ExternalName
			}
		}
		cond := "-"
		if c := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady); c != nil {
			cond = fmt.Sprintf("Ready=%s %s", c.Status, c.Reason)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", xb.Namespace, xb.Name, xb.Status.Mode, xb.Status.Ready, xb.Status.ServiceName, target, cond)
	}
	return w.Flush()
}
