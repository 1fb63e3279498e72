package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// route is one Service port and the servers ("ip:port") behind it: every
// connection must reach one of them, and each of them must answer some.
type route struct {
	port    int32
	servers []string
}

// story is a user story applied from its sample in config/samples.
type story struct {
	title string
	name  string  // ExternalBackend, sample and Service name
	alias string  // CNAME target of an alias story
	route []route // what the ClusterIP reaches
}

var stories = []story{
	{title: "1 svc1: two named ports to one machine", name: "svc1", route: []route{
		{7064, []string{"192.168.1.2:31496"}},
		{7164, []string{"192.168.1.2:31337"}},
	}},
	{title: "2 rocketmq: three machines", name: "rocketmq", route: []route{
		{9100, []string{"192.168.1.2:9100", "192.168.1.3:9100", "192.168.1.4:9100"}},
	}},
	{title: "3 testdb: alias of an RDS endpoint", name: "testdb", alias: "test.ap-northeast-1.rds.amazonaws.com"},
	{title: "4 external-service-1: two machines, two ports", name: "external-service-1", route: []route{
		{9999, []string{"203.0.113.21:80", "203.0.113.22:80"}},
		{8888, []string{"203.0.113.21:443", "203.0.113.22:443"}},
	}},
	{title: "5 db: a MySQL server on a VM", name: "db", route: []route{
		{3306, []string{"203.0.113.10:3306"}},
	}},
	{title: "6 api-partner: alias of a partner's API", name: "api-partner", alias: "api.partner.com"},
}

// Story 7: a database named by a DNS name that moves on failover.
const (
	failoverName    = "orders-db"
	failoverDNSName = "orders-db.cluster-1.rds.example.test"
	failoverPort    = 5432
	primaryIP       = "192.168.3.10"
	standbyIP       = "192.168.3.11"
)

// Story 8: three pods behind ordinary Services.
var pods = []string{"192.168.2.11", "192.168.2.12", "192.168.2.13"}

const (
	podPort       = 80
	httpdPort     = 8080
	httpdNodePort = 30000
)

// storyMachines lists every machine the stories reach and its ports.
func storyMachines() map[string][]int {
	out := map[string][]int{}
	add := func(server string) {
		ap := netip.MustParseAddrPort(server)
		host, port := ap.Addr().String(), int(ap.Port())
		if !slices.Contains(out[host], port) {
			out[host] = append(out[host], port)
		}
	}
	for _, s := range stories {
		for _, r := range s.route {
			for _, server := range r.servers {
				add(server)
			}
		}
	}
	for _, ip := range []string{primaryIP, standbyIP} {
		add(net.JoinHostPort(ip, fmt.Sprint(failoverPort)))
	}
	for _, ip := range pods {
		add(net.JoinHostPort(ip, fmt.Sprint(podPort)))
	}
	return out
}

// loadSample reads config/samples/outpost_v1alpha1_externalbackend_<name>.yaml.
func loadSample(tb testing.TB, name string) *v1alpha1.ExternalBackend {
	tb.Helper()
	path := filepath.Join(testenv.RepoRoot(), "config", "samples", "outpost_v1alpha1_externalbackend_"+name+".yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	xb := &v1alpha1.ExternalBackend{}
	if err := yaml.UnmarshalStrict(data, xb); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return xb
}

// reachesAll connects to addr from the client until every server answered
// (at most 60 times); an answer from any other server is an error.
func (w *world) reachesAll(addr string, servers []string) error {
	seen := map[string]bool{}
	for range 60 {
		r, err := w.connect(addr, 2*time.Second)
		if err != nil {
			return err
		}
		if !slices.Contains(servers, r.server) {
			return fmt.Errorf("%s reached %s, want one of %v", addr, r.server, servers)
		}
		seen[r.server] = true
		if len(seen) == len(servers) {
			return nil
		}
	}
	return fmt.Errorf("%s reached only %v of %v in 60 connections", addr, seen, servers)
}

// clusterIP waits for the Service to have a ClusterIP and returns it.
func (w *world) clusterIP(tb testing.TB, name string) string {
	tb.Helper()
	var ip string
	poll.Eventually(tb, 20*time.Second, "Service "+name+" with a ClusterIP", func() error {
		svc, err := w.kube.CoreV1().Services("default").Get(ctx(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			return fmt.Errorf("clusterIP %q", svc.Spec.ClusterIP)
		}
		ip = svc.Spec.ClusterIP
		return nil
	})
	return ip
}

// resolvesTo waits until CoreDNS answers name's A query with exactly want.
func (w *world) resolvesTo(tb testing.TB, name string, want ...string) {
	tb.Helper()
	slices.Sort(want)
	poll.Eventually(tb, 20*time.Second, name+" resolves to "+strings.Join(want, ","), func() error {
		got, err := w.addresses(name)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

// ready waits for the ExternalBackend's Ready condition.
func (w *world) ready(tb testing.TB, name string) {
	tb.Helper()
	poll.Eventually(tb, 20*time.Second, "ExternalBackend "+name+" Ready", func() error {
		xb := &v1alpha1.ExternalBackend{}
		if err := w.client.Get(ctx(), keyOf(name), xb); err != nil {
			return err
		}
		c := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready condition %+v", c)
		}
		return nil
	})
}

func TestUserStories(t *testing.T) {
	w := newWorld(t, storyMachines())

	// Like `kubectl apply -k config/samples`: every story at once.
	for _, s := range stories {
		if err := w.client.Create(ctx(), loadSample(t, s.name)); err != nil {
			t.Fatalf("apply %s: %v", s.name, err)
		}
	}

	for _, s := range stories {
		t.Run(s.title, func(t *testing.T) {
			w.ready(t, s.name)
			if s.alias != "" {
				// Only the CNAME is checked: the target is a public name,
				// never resolved or connected to here.
				poll.Eventually(t, 20*time.Second, s.name+" is a CNAME for "+s.alias, func() error {
					r, err := w.lookup(serviceName(s.name), dns.TypeCNAME)
					if err != nil {
						return err
					}
					for _, rr := range r.Answer {
						if c, ok := rr.(*dns.CNAME); ok && c.Target == dns.Fqdn(s.alias) {
							return nil
						}
					}
					return fmt.Errorf("answer %s %v", dns.RcodeToString[r.Rcode], r.Answer)
				})
				return
			}
			ip := w.clusterIP(t, s.name)
			w.resolvesTo(t, serviceName(s.name), ip)
			for _, r := range s.route {
				addr := net.JoinHostPort(ip, fmt.Sprint(r.port))
				poll.Eventually(t, 20*time.Second, fmt.Sprintf("%s:%d reaches %v", s.name, r.port, r.servers), func() error {
					return w.reachesAll(addr, r.servers)
				})
			}
		})
	}

	t.Run("2 rocketmq: Service and Endpoints carry the scrape annotations and labels", func(t *testing.T) {
		wantLabels := map[string]string{"app": "rocketmq", "type": "ec2"}
		wantAnnotations := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9100", "prometheus.io/path": "/metrics"}
		svc, err := w.kube.CoreV1().Services("default").Get(ctx(), "rocketmq", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		//nolint:staticcheck // Prometheus' endpoints discovery reads legacy Endpoints
		var eps *corev1.Endpoints
		poll.Eventually(t, 20*time.Second, "Endpoints rocketmq", func() (err error) {
			eps, err = w.kube.CoreV1().Endpoints("default").Get(ctx(), "rocketmq", metav1.GetOptions{})
			return err
		})
		for kind, obj := range map[string]metav1.ObjectMeta{"Service": svc.ObjectMeta, "Endpoints": eps.ObjectMeta} {
			for k, v := range wantLabels {
				if obj.Labels[k] != v {
					t.Errorf("%s label %s=%q, want %q", kind, k, obj.Labels[k], v)
				}
			}
			for k, v := range wantAnnotations {
				if obj.Annotations[k] != v {
					t.Errorf("%s annotation %s=%q, want %q", kind, k, obj.Annotations[k], v)
				}
			}
		}
		var addrs []string
		for _, sub := range eps.Subsets {
			for _, a := range sub.Addresses {
				addrs = append(addrs, a.IP)
			}
		}
		slices.Sort(addrs)
		if want := []string{"192.168.1.2", "192.168.1.3", "192.168.1.4"}; !slices.Equal(addrs, want) {
			t.Errorf("Endpoints addresses %v, want %v", addrs, want)
		}
	})

	t.Run("5 db as a NodePort: the node's port reaches the VM", func(t *testing.T) {
		xb := loadSample(t, "db")
		xb.Name = "db-nodeport"
		xb.Spec.ServiceType = corev1.ServiceTypeNodePort
		if err := w.client.Create(ctx(), xb); err != nil {
			t.Fatal(err)
		}
		var nodePort int32
		poll.Eventually(t, 20*time.Second, "Service db-nodeport with a node port", func() error {
			svc, err := w.kube.CoreV1().Services("default").Get(ctx(), xb.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Ports[0].NodePort == 0 {
				return fmt.Errorf("type %s ports %+v", svc.Spec.Type, svc.Spec.Ports)
			}
			nodePort = svc.Spec.Ports[0].NodePort
			return nil
		})
		addr := net.JoinHostPort(nodeIP, fmt.Sprint(nodePort))
		poll.Eventually(t, 20*time.Second, "db-nodeport reaches the VM", func() error {
			return w.reachesAll(addr, []string{"203.0.113.10:3306"})
		})
	})

	t.Run("7 database behind a DNS name follows a failover", func(t *testing.T) {
		w.upstream.SetA(failoverDNSName, 1, primaryIP)
		xb := &v1alpha1.ExternalBackend{
			ObjectMeta: metav1.ObjectMeta{Name: failoverName, Namespace: "default"},
			Spec: v1alpha1.ExternalBackendSpec{
				Addresses:  []string{failoverDNSName},
				Ports:      []v1alpha1.BackendPort{{Port: failoverPort}},
				Resolution: &v1alpha1.Resolution{MinTTL: &metav1.Duration{Duration: time.Second}},
			},
		}
		if err := w.client.Create(ctx(), xb); err != nil {
			t.Fatal(err)
		}
		ip := w.clusterIP(t, failoverName)
		w.resolvesTo(t, serviceName(failoverName), ip)
		addr := net.JoinHostPort(ip, fmt.Sprint(failoverPort))
		primary, standby := net.JoinHostPort(primaryIP, fmt.Sprint(failoverPort)), net.JoinHostPort(standbyIP, fmt.Sprint(failoverPort))
		poll.Eventually(t, 20*time.Second, "reaches the primary", func() error { return w.reachesAll(addr, []string{primary}) })

		failover := time.Now()
		w.upstream.SetA(failoverDNSName, 1, standbyIP)
		poll.Eventually(t, 15*time.Second, "reaches the standby after the failover", func() error { return w.reachesAll(addr, []string{standby}) })
		t.Logf("connections reach the new address %s after the DNS change", time.Since(failover).Round(time.Millisecond))
		// Clients keep their name and ClusterIP.
		w.resolvesTo(t, serviceName(failoverName), ip)
	})

	t.Run("8 ordinary Services: ClusterIP, NodePort and headless over pods", func(t *testing.T) {
		httpd := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "httpd-svc", Namespace: "default"},
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeNodePort,
				Selector: map[string]string{"app": "httpd"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: httpdPort,
					TargetPort: intstr.FromInt32(podPort), NodePort: httpdNodePort}},
			},
		}
		headless := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "my-linkedin-headless-service", Namespace: "default"},
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone,
				Selector:  map[string]string{"app": "linkedin"},
				Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: podPort}},
			},
		}
		for _, svc := range []*corev1.Service{httpd, headless} {
			if _, err := w.kube.CoreV1().Services("default").Create(ctx(), svc, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			// No controller-manager runs here: write the slices the
			// EndpointSlice controller would write for the selected pods.
			w.podSlice(t, svc.Name)
		}
		podServers := make([]string, len(pods))
		for i, ip := range pods {
			podServers[i] = net.JoinHostPort(ip, fmt.Sprint(podPort))
		}

		ip := w.clusterIP(t, httpd.Name)
		w.resolvesTo(t, serviceName(httpd.Name), ip)
		clusterAddr := net.JoinHostPort(ip, fmt.Sprint(httpdPort))
		poll.Eventually(t, 20*time.Second, "httpd-svc ClusterIP reaches the three pods", func() error {
			return w.reachesAll(clusterAddr, podServers)
		})
		nodePortAddr := net.JoinHostPort(nodeIP, fmt.Sprint(httpdNodePort))
		poll.Eventually(t, 20*time.Second, "httpd-svc NodePort reaches the three pods", func() error {
			return w.reachesAll(nodePortAddr, podServers)
		})
		// NodePort traffic from outside the cluster is masqueraded: the pod
		// sees the node's address on its network.
		r, err := w.connect(nodePortAddr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if host, _, _ := net.SplitHostPort(r.peer); host != gateway(pods[0]) {
			t.Errorf("pod saw the NodePort connection from %s, want the node's %s", host, gateway(pods[0]))
		}

		w.resolvesTo(t, serviceName(headless.Name), pods...)
		// A headless name's addresses are the pods themselves.
		addrs, err := w.addresses(serviceName(headless.Name))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			want := net.JoinHostPort(a, fmt.Sprint(podPort))
			if r, err := w.connect(want, 2*time.Second); err != nil || r.server != want {
				t.Errorf("headless address %s: reached %+v, %v", a, r, err)
			}
		}
	})
}

// podSlice writes the EndpointSlice of a Service over the three pods.
func (w *world) podSlice(tb testing.TB, service string) {
	tb.Helper()
	s := &discovery.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-pods", Namespace: "default",
			Labels: map[string]string{discovery.LabelServiceName: service, discovery.LabelManagedBy: "e2e-test"}},
		AddressType: discovery.AddressTypeIPv4,
		Ports:       []discovery.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](podPort)}},
	}
	for _, ip := range pods {
		s.Endpoints = append(s.Endpoints, discovery.Endpoint{
			Addresses:  []string{ip},
			Conditions: discovery.EndpointConditions{Ready: ptr.To(true)},
			NodeName:   ptr.To(nodeName),
		})
	}
	if _, err := w.kube.DiscoveryV1().EndpointSlices("default").Create(ctx(), s, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
}
