package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/outpost-dev/outpost/test/lib/loopback"
	"github.com/outpost-dev/outpost/test/lib/poll"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// checkCoreDNSServes runs the CoreDNS image the way the Deployment does
// (config/components/dns/Corefile, as 65532, nothing but the image's files) against a
// real API server and asks it for the API server's own Service. Only what a
// test must change is changed: loopback ports instead of 53/8080/8181/9153
// (other tests may hold those), a kubeconfig instead of the Pod's service
// account, and a dead loopback upstream instead of the node's resolv.conf.
func checkCoreDNSServes(t *testing.T, img *Image) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("serving DNS from the CoreDNS image needs root (chroot)")
		}
		t.Log("not root: the CoreDNS image is not started")
		return
	}
	env, cfg := testenv.StartForTest(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var apiService *corev1.Service
	poll.Eventually(t, 30*time.Second, "the API server's own Service", func() (err error) {
		apiService, err = cs.CoreV1().Services("default").Get(t.Context(), "kubernetes", metav1.GetOptions{})
		return err
	})

	rootfs := unpack(t, img)
	corefile, err := os.ReadFile(filepath.Join(root, "config", "components", "dns", "Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	port := loopback.FreePort(t)
	text := string(corefile)
	for _, r := range []struct{ old, new string }{
		{".:53 {", fmt.Sprintf(".:%d {\n    bind 127.0.0.1", port)},
		{"health :8080", fmt.Sprintf("health 127.0.0.1:%d", loopback.FreePort(t))},
		{"ready :8181", fmt.Sprintf("ready 127.0.0.1:%d", loopback.FreePort(t))},
		{"prometheus :9153", fmt.Sprintf("prometheus 127.0.0.1:%d", loopback.FreePort(t))},
		{"forward . /etc/resolv.conf", "forward . 127.0.0.1:9"},
		{"fallthrough in-addr.arpa ip6.arpa", "fallthrough in-addr.arpa ip6.arpa\n        kubeconfig /etc/coredns/kubeconfig"},
	} {
		if strings.Count(text, r.old) != 1 {
			t.Fatalf("config/components/dns/Corefile no longer has exactly one %q; update this test", r.old)
		}
		text = strings.Replace(text, r.old, r.new, 1)
	}
	// What the Deployment mounts (the ConfigMap) and the kubelet would provide.
	if err := os.MkdirAll(filepath.Join(rootfs, "etc", "coredns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "coredns", "Corefile"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(rootfs, "etc", "coredns", "kubeconfig")
	if err := testenv.WriteAdminKubeconfig(env, "coredns-image", "", kubeconfig); err != nil {
		t.Fatal(err)
	}
	// The image's non-root user reads it, as from a mounted Secret.
	if err := os.Chmod(kubeconfig, 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cmd, err := img.Command(ctx, rootfs, "-conf", "/etc/coredns/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("CoreDNS from the image logged:\n%s", logs.String())
		}
	})

	name := "kubernetes.default.svc.cluster.local."
	var answer string
	poll.Eventually(t, 60*time.Second, name+" answered by CoreDNS from the image", func() error {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			return fmt.Errorf("want one A record, got %s with %v", dns.RcodeToString[r.Rcode], r.Answer)
		}
		a, ok := r.Answer[0].(*dns.A)
		if !ok {
			return fmt.Errorf("want an A record, got %v", r.Answer[0])
		}
		answer = a.A.String()
		return nil
	})
	if answer != apiService.Spec.ClusterIP {
		t.Fatalf("%s from the CoreDNS image: %q, want the Service's ClusterIP %s", name, answer, apiService.Spec.ClusterIP)
	}
}
