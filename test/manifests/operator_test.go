package manifests

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator"
)

// operatorAccount is the identity the Deployment of config/manager runs as.
var operatorAccount = rest.ImpersonationConfig{
	UserName: "system:serviceaccount:outpost-system:outpost-operator",
	Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:outpost-system", "system:authenticated"},
}

var (
	operatorOnce    sync.Once
	operatorMetrics string
	operatorErr     error
)

// startOperator runs the operator in-process once for the package (a
// process holds one controller of a name), as its ServiceAccount with the
// RBAC config/default installed, its metrics on a free port of 127.0.0.1
// (returned). It stops when the test binary exits.
func startOperator(t *testing.T) string {
	t.Helper()
	installed(t)
	operatorOnce.Do(func() { operatorMetrics, operatorErr = runOperator() })
	if operatorErr != nil {
		t.Fatal(operatorErr)
	}
	return operatorMetrics
}

func runOperator() (string, error) {
	asOperator := rest.CopyConfig(cfg)
	asOperator.Impersonate = operatorAccount

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	metricsAddr := ln.Addr().String()
	ln.Close()

	opts := operator.DefaultOptions()
	opts.MetricsBindAddress = metricsAddr
	opts.HealthProbeBindAddress = "0"
	opts.DNSServers = []string{"127.0.0.1:1"} // the backends here are IP literals
	mgr, err := operator.New(asOperator, opts)
	if err != nil {
		return "", err
	}
	go func() {
		if err := mgr.Start(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "operator:", err)
		}
	}()
	return metricsAddr, nil
}

// eventually polls check every 100ms until it returns nil, or fails the
// test with its last error after a minute.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The RBAC config/default installs is all the operator needs, with the
// OwnerReferencesPermissionEnforcement admission plugin on: it learns the
// cluster's ranges, writes the Service, EndpointSlice and Endpoints with
// blockOwnerDeletion owner references, the status and the Events.
func TestOperatorRunsWithItsOwnRBAC(t *testing.T) {
	startOperator(t)
	ctx := t.Context()
	c, err := client.New(cfg, client.Options{Scheme: operator.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "rbac-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	xb := &v1alpha1.ExternalBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "db"},
		Spec:       v1alpha1.ExternalBackendSpec{Addresses: []string{"203.0.113.10"}, Ports: []v1alpha1.BackendPort{{Port: 3306}}},
	}
	if err := c.Create(ctx, xb); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(xb)
	eventually(t, "ExternalBackend db Ready", func() error {
		if err := c.Get(ctx, key, xb); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(xb.Status.Conditions, v1alpha1.ConditionReady) {
			return fmt.Errorf("conditions %+v", xb.Status.Conditions)
		}
		return nil
	})
	for _, obj := range []client.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Endpoints{}} { //nolint:staticcheck // the operator writes legacy Endpoints
		name := "db"
		if _, ok := obj.(*discoveryv1.EndpointSlice); ok {
			name = "db-ipv4"
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, obj); err != nil {
			t.Errorf("%T %s: %v", obj, name, err)
			continue
		}
		owner := metav1.GetControllerOf(obj)
		if owner == nil || owner.UID != xb.UID || owner.BlockOwnerDeletion == nil || !*owner.BlockOwnerDeletion {
			t.Errorf("%T %s: controller %+v, want the ExternalBackend with blockOwnerDeletion", obj, name, owner)
		}
	}
}

// The metrics are served over HTTPS to callers the API server
// authenticates and authorizes: none without a token, 403 for an account
// without the outpost-operator-metrics-reader ClusterRole, the metrics with it.
func TestMetricsNeedAReaderToken(t *testing.T) {
	addr := startOperator(t)
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "monitoring-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := func(account string) string {
		t.Helper()
		if _, err := cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: account}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := cs.CoreV1().ServiceAccounts(ns.Name).CreateToken(ctx, account, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for %s: %v", account, err)
		}
		return tr.Status.Token
	}
	reader, stranger := token("prometheus"), token("stranger")
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "prometheus-"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "outpost-operator-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns.Name, Name: "prometheus"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The certificate is the operator's self-signed one.
	httpClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed
	get := func(token string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(body), err
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"no token", "", http.StatusUnauthorized}, {"an account without the role", stranger, http.StatusForbidden}, {"an outpost-operator-metrics-reader", reader, http.StatusOK}} {
		eventually(t, tc.who, func() error {
			code, body, err := get(tc.token)
			switch {
			case err != nil:
				return err // not serving yet
			case code != tc.want:
				return fmt.Errorf("status %d, want %d: %.200s", code, tc.want, body)
			}
			return nil
		})
	}
	if _, body, _ := get(reader); !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("the reader got no controller metrics: %.300s", body)
	}
}
