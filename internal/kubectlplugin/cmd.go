package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// connection holds kubectl's flags for reaching the cluster.
type connection struct {
	kubeconfig, context, namespace string
}

func (c *connection) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
	f.StringVar(&c.context, "context", "", "The kubeconfig context to use.")
	f.StringVarP(&c.namespace, "namespace", "n", "", "The namespace (default: the context's namespace).")
}

// client returns a client for the API server and the namespace to work in,
// resolved the way kubectl resolves them.
func (c *connection) client() (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.context}
	overrides.Context.Namespace = c.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("--kubeconfig/--context: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("--namespace: %w", err)
	}
	// Reading v1 Endpoints, which import must, makes every API server
	// since 1.33 warn that they are deprecated; the warning is for writers.
	cfg.WarningHandler = rest.NoWarnings{}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, "", err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	return cl, ns, err
}

// NewCommand returns `kubectl outpost` with its subcommands, printing to
// out and errOut.
func NewCommand(out, errOut io.Writer) *cobra.Command {
	var conn connection
	root := &cobra.Command{
		Use:   "kubectl-outpost",
		Short: "Adopt existing Services into ExternalBackends and explain what an ExternalBackend produced",
		Long: `kubectl outpost works with Outpost's ExternalBackends.

Installed on PATH as kubectl-outpost, it runs as "kubectl outpost".`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl outpost"},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	conn.bind(root)
	root.AddCommand(newImportCommand(&conn), newExplainCommand(&conn))
	return root
}

// Execute runs the plugin with os.Args and returns the exit code.
func Execute() int {
	cmd := NewCommand(os.Stdout, os.Stderr)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

func newImportCommand(conn *connection) *cobra.Command {
	var allNamespaces bool
	var output string
	cmd := &cobra.Command{
		Use:   "import [NAME]",
		Short: "Print ExternalBackends describing existing selectorless and ExternalName Services",
		Long: `Import reads Services without a selector and their Endpoints (or EndpointSlices),
and ExternalName Services, and prints the ExternalBackends that describe them,
ready for "kubectl apply -f -".

Addresses are the endpoints' ready and not-ready addresses; each Service port
maps to the endpoint port of the same name; the Service's type, session
affinity, labels and annotations (less kubectl's own) are kept. Every
ExternalBackend printed carries the annotation ` + v1alpha1.AdoptAnnotation + `: "true", which
asks the operator to take over the existing Service.

Services with a selector, Services already written for an ExternalBackend,
and Services without endpoint addresses are skipped with a note on stderr.`,
		Example: `  # Preview, then adopt, every hand-written Service of the namespace
  kubectl outpost import -n legacy
  kubectl outpost import -n legacy | kubectl apply -f -

  # One Service, as JSON
  kubectl outpost import svc1 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "yaml" && output != "json" {
				return fmt.Errorf("--output %q: must be yaml or json", output)
			}
			if allNamespaces && len(args) > 0 {
				return errors.New("a NAME cannot be combined with --all-namespaces: give the namespace with -n instead")
			}
			cl, ns, err := conn.client()
			if err != nil {
				return err
			}
			if allNamespaces {
				ns = ""
			}
			return runImport(cmd.Context(), cl, ns, args, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "Import from every namespace.")
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "Output format: yaml or json.")
	return cmd
}

func runImport(ctx context.Context, cl client.Client, ns string, names []string, output string, out, errOut io.Writer) error {
	var services []corev1.Service
	if len(names) == 1 {
		var svc corev1.Service
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: names[0]}, &svc); err != nil {
			return err
		}
		services = []corev1.Service{svc}
	} else {
		var list corev1.ServiceList
		if err := cl.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		services = list.Items
	}
	var xbs []*v1alpha1.ExternalBackend
	for i := range services {
		svc := &services[i]
		backends, err := readBackends(ctx, cl, svc)
		if err != nil {
			return err
		}
		xb, notes, err := Import(svc, backends)
		for _, n := range notes {
			fmt.Fprintln(errOut, "note:", n)
		}
		var skipped *Skipped
		switch {
		case errors.As(err, &skipped) && len(names) == 0:
			fmt.Fprintln(errOut, "note:", skipped)
		case err != nil:
			return err
		default:
			xbs = append(xbs, xb)
		}
	}
	if len(xbs) == 0 {
		fmt.Fprintln(errOut, "note: no Service to import")
	}
	return writeBackends(out, output, xbs)
}

// readBackends reads where svc's traffic goes: its Endpoints, or, for
// Services whose endpoints were written as EndpointSlices only, those.
// Endpoints no ExternalBackend can describe skip svc.
func readBackends(ctx context.Context, cl client.Client, svc *corev1.Service) (Backends, error) {
	skip := func(err error) error { return &Skipped{Namespace: svc.Namespace, Name: svc.Name, Reason: err.Error()} }
	if len(svc.Spec.Selector) > 0 || svc.Spec.Type == corev1.ServiceTypeExternalName || OwnedByExternalBackend(svc) {
		return Backends{}, nil // Import skips or needs none
	}
	var ep corev1.Endpoints
	err := cl.Get(ctx, client.ObjectKeyFromObject(svc), &ep)
	if err != nil && !apierrors.IsNotFound(err) {
		return Backends{}, err
	}
	var backends Backends
	if err == nil {
		if backends, err = BackendsFromEndpoints(&ep); err != nil {
			return Backends{}, skip(err)
		}
	}
	if len(backends.Addresses) > 0 {
		return backends, nil
	}
	var slices discoveryv1.EndpointSliceList
	if err := cl.List(ctx, &slices, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return Backends{}, err
	}
	backends, err = BackendsFromSlices(slices.Items)
	if err != nil {
		return Backends{}, skip(err)
	}
	return backends, nil
}

type explainOptions struct {
	dnsServer, clusterDomain string
	rulesFile, chainPrefix   string
	sources                  []string
	output                   string
}

func newExplainCommand(conn *connection) *cobra.Command {
	o := explainOptions{}
	cmd := &cobra.Command{
		Use:   "explain NAME",
		Short: "Show an ExternalBackend and everything it produced, down to DNS and a node's rules",
		Long: `Explain shows one ExternalBackend on one screen: its conditions, a row per
address (ready, reason, host, expiry), the Service and EndpointSlices the
operator wrote, and what cluster DNS answers for NAME.NAMESPACE.svc.CLUSTER-DOMAIN
(A, AAAA, and SRV for each named port), asked live.

Given a node's rules (--rules, the output of "outpost-syncer --once --dry-run"),
it also traces a first TCP/UDP packet from --source to every ClusterIP and port
and shows the endpoints it can reach.`,
		Example: `  kubectl outpost explain svc1 -n default
  kubectl outpost explain svc1 --dns-server 10.96.0.10:53
  outpost-syncer --once --dry-run > rules.txt && kubectl outpost explain svc1 --rules rules.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains([]string{"", "yaml", "json"}, o.output) {
				return fmt.Errorf("--output %q: must be yaml or json (or empty for the screen)", o.output)
			}
			sources, err := parseAddrs(o.sources)
			if err != nil {
				return err
			}
			var rules []byte
			if o.rulesFile != "" {
				if rules, err = os.ReadFile(o.rulesFile); err != nil {
					return fmt.Errorf("--rules: %w", err)
				}
			}
			cl, ns, err := conn.client()
			if err != nil {
				return err
			}
			e, err := gatherExplanation(cmd.Context(), cl, ns, args[0], &o, rules, sources)
			if err != nil {
				return err
			}
			return writeExplanation(cmd.OutOrStdout(), o.output, e)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dnsServer, "dns-server", "", "DNS server to ask, HOST:PORT (default: the first nameserver of /etc/resolv.conf).")
	f.StringVar(&o.clusterDomain, "cluster-domain", "cluster.local", "The cluster's DNS domain.")
	f.StringVar(&o.rulesFile, "rules", "", "A node's rules, the output of outpost-syncer --once --dry-run, to trace first packets through.")
	f.StringVar(&o.chainPrefix, "chain-prefix", "OUTPOST", "The syncer's --chain-prefix the rules were written with.")
	f.StringSliceVar(&o.sources, "source", []string{"10.244.0.10", "fd00:10:244::a"}, "Pod-like source addresses of the traced packets, one per IP family.")
	f.StringVarP(&o.output, "output", "o", "", "Output format: empty for the screen, or yaml or json of everything gathered.")
	return cmd
}

func parseAddrs(ss []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--source %q: not an IP address", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// gatherExplanation reads the ExternalBackend and its objects, asks DNS and
// traces the rules. Only a missing ExternalBackend is an error: whatever
// else fails is part of the explanation.
func gatherExplanation(ctx context.Context, cl client.Client, ns, name string, o *explainOptions, rules []byte, sources []netip.Addr) (*Explanation, error) {
	xb := &v1alpha1.ExternalBackend{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, xb); err != nil {
		return nil, err
	}
	e := &Explanation{Backend: xb}
	svcName := xb.Status.ServiceName
	if svcName == "" {
		svcName = xb.Name
	}
	svc := &corev1.Service{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: svcName}, svc); err != nil {
		e.ServiceError = err.Error()
		svc = nil
	} else {
		e.Service = svc
		var list discoveryv1.EndpointSliceList
		if err := cl.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: svcName}); err != nil {
			return nil, err
		}
		e.EndpointSlices = list.Items
	}

	var ports []corev1.ServicePort
	if svc != nil {
		ports = svc.Spec.Ports
	}
	questions := dnsQuestions(svcName, ns, o.clusterDomain, ports)
	e.DNSServer = o.dnsServer
	if e.DNSServer == "" {
		server, err := defaultDNSServer("/etc/resolv.conf")
		if err != nil {
			for i := range questions {
				questions[i].Error = err.Error()
			}
		}
		e.DNSServer = server
	}
	e.DNS = questions
	if e.DNSServer != "" {
		e.DNS = askDNS(e.DNSServer, questions)
	}

	if rules != nil && svc != nil {
		traces, err := traceService(rules, o.chainPrefix, sources, svc)
		e.Traces = traces
		if err != nil {
			e.TraceError = err.Error()
		}
	}
	return e, nil
}

func writeExplanation(w io.Writer, format string, e *Explanation) error {
	switch format {
	case "json":
		return writeJSON(w, e)
	case "yaml":
		data, err := yaml.Marshal(e)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	return WriteExplanation(w, e, time.Now())
}
