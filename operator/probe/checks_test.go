package probe

import (
	"encoding/pem"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outpost-dev/outpost/test/lib/netns"
)

// fast makes checks answer within a probe or two, with a timeout a starved
// prober on a loaded 2-core machine does not hit before a refusal arrives.
func fast(checks ...Check) Spec {
	return Spec{Checks: checks, Interval: time.Second, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1}
}

// listenIn listens on addr inside the test's namespace; the listener is
// closed when the test ends.
func listenIn(t *testing.T, ns *netns.Host, network string, addr netip.AddrPort) (ln net.Listener, pc net.PacketConn) {
	t.Helper()
	err := ns.Do(func() (err error) {
		if network == "udp" {
			pc, err = net.ListenPacket(network, addr.String())
			return err
		}
		ln, err = net.Listen(network, addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s %s in %s: %v", network, addr, ns.Name, err)
	}
	t.Cleanup(func() {
		if ln != nil {
			ln.Close()
		}
		if pc != nil {
			pc.Close()
		}
	})
	return ln, pc
}

func (h *harness) ensure(o string, addr netip.Addr, host string, spec Spec) {
	h.t.Helper()
	if err := h.prober.Ensure(owner(o), []Target{{Addr: addr, Host: host}}, spec); err != nil {
		h.t.Fatal(err)
	}
}

func TestAddressIsReadyOnlyWhileEveryCheckPasses(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	addr := h.ns.IPs[0]
	h.ns.StartTCP(t, netip.AddrPortFrom(addr, 9901)) // the admin port answers
	service := h.ns.StartHTTP(t, netip.AddrPortFrom(addr, 8080))
	service.Stop() // the service port does not
	h.ensure("two-ports", addr, "", fast(Check{Type: TCP, Port: 9901}, Check{Type: HTTP, Port: 8080}))

	// Only the failing check is reported (a probe slowed into a timeout by
	// a busy machine may say more; the next one says exactly this).
	want := "HTTP GET http://" + addr.String() + ":8080/ (" + addr.String() + ":8080): connect: connection refused"
	h.watch(owner("two-ports"), addr, settle, "not ready, reporting only the failing check "+want, func(s Status) bool {
		return notReady(s) && s.LastError == want
	})
	if err := service.Start(); err != nil {
		t.Fatal(err)
	}
	h.watch(owner("two-ports"), addr, settle, "ready once both ports answer", ready)
}

func TestGRPCCheckFollowsTheHealthService(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	addr := h.ns.IPs[1]
	ln, _ := listenIn(t, h.ns, "tcp", netip.AddrPortFrom(addr, 50051))
	hs := grpchealth.NewServer()
	hs.SetServingStatus("payments.v1.Payments", healthpb.HealthCheckResponse_SERVING)
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln) //nolint:errcheck // ends with the test
	t.Cleanup(srv.Stop)

	h.ensure("grpc", addr, "", fast(Check{Type: GRPC, Port: 50051, GRPCService: "payments.v1.Payments"}))
	h.watch(owner("grpc"), addr, settle, "ready while SERVING", ready)

	hs.SetServingStatus("payments.v1.Payments", healthpb.HealthCheckResponse_NOT_SERVING)
	st, _ := h.watch(owner("grpc"), addr, settle, "not ready when NOT_SERVING", notReady)
	if want := `GRPC health check of ` + addr.String() + `:50051 (service "payments.v1.Payments"): NOT_SERVING`; st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}

	h.ensure("grpc-unknown", addr, "", fast(Check{Type: GRPC, Port: 50051, GRPCService: "nope"}))
	st, _ = h.watch(owner("grpc-unknown"), addr, settle, "not ready for a service the server does not know", notReady)
	if !strings.Contains(st.LastError, "NotFound") {
		t.Errorf("last error %q does not say the service is unknown", st.LastError)
	}
}

func TestHTTPSCheckVerifiesWithTheGivenCAAndServerName(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	trusted := h.ns.StartHTTPS(t, netip.AddrPortFrom(h.ns.IPs[2], 8443), "api.example.test")
	other := h.ns.StartHTTPS(t, netip.AddrPortFrom(h.ns.IPs[3], 8443), "api.example.test")
	// The test servers' certificates are self-signed, so the first one is
	// the CA of its own certificate and signs nothing of the other's.
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: trusted.TLSCert.Raw})
	check := Check{Type: HTTPS, Port: 8443, RootCAs: ca, ServerName: "api.example.test"}

	h.ensure("signed", trusted.Addr.Addr(), "", fast(check))
	h.watch(owner("signed"), trusted.Addr.Addr(), settle, "ready: certificate signed by the CA, for the server name", ready)

	h.ensure("unsigned", other.Addr.Addr(), "", fast(check))
	st, _ := h.watch(owner("unsigned"), other.Addr.Addr(), settle, "not ready: certificate not signed by the CA", notReady)
	if !strings.Contains(st.LastError, "certificate signed by unknown authority") {
		t.Errorf("last error %q does not name the unknown authority", st.LastError)
	}

	wrongName := check
	wrongName.ServerName = "db.example.test"
	h.ensure("wrong-sni", trusted.Addr.Addr(), "", fast(wrongName))
	st, _ = h.watch(owner("wrong-sni"), trusted.Addr.Addr(), settle, "not ready: certificate not for the server name", notReady)
	if !strings.Contains(st.LastError, "db.example.test") {
		t.Errorf("last error %q does not name the server name", st.LastError)
	}
}

func TestHTTPCheckSendsHeadersAndExpectsStatuses(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	addr := h.ns.IPs[4]
	ln, _ := listenIn(t, h.ns, "tcp", netip.AddrPortFrom(addr, 8081))
	// Like a virtual host behind a shared address: only the right Host and
	// token get the health page.
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Host != "status.example.test":
			w.WriteHeader(http.StatusMisdirectedRequest)
		case r.Header.Get("Authorization") != "Bearer probe":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})}
	go srv.Serve(ln) //nolint:errcheck // ends with the test
	t.Cleanup(func() { srv.Close() })

	header := http.Header{"Host": {"status.example.test"}, "Authorization": {"Bearer probe"}}
	h.ensure("vhost", addr, "", fast(Check{Type: HTTP, Port: 8081, Path: "/health", Header: header, ExpectedStatuses: []string{"204"}}))
	h.watch(owner("vhost"), addr, settle, "ready with the Host and token", ready)

	h.ensure("no-token", addr, "", fast(Check{Type: HTTP, Port: 8081, Header: http.Header{"Host": {"status.example.test"}}}))
	st, _ := h.watch(owner("no-token"), addr, settle, "not ready without the token", notReady)
	if !strings.Contains(st.LastError, "status 401 Unauthorized, want 200-399") {
		t.Errorf("last error %q", st.LastError)
	}

	h.ensure("strict", addr, "", fast(Check{Type: HTTP, Port: 8081, Header: header, ExpectedStatuses: []string{"200"}}))
	st, _ = h.watch(owner("strict"), addr, settle, "not ready when 204 is not expected", notReady)
	if !strings.Contains(st.LastError, "status 204 No Content, want 200") {
		t.Errorf("last error %q", st.LastError)
	}
}

func TestDNSCheckWantsAnAnswer(t *testing.T) {
	t.Parallel()
	h := startProber(t)
	addr := h.ns.IPs[5]
	_, pc := listenIn(t, h.ns, "udp", netip.AddrPortFrom(addr, 53))
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg).SetReply(q)
		if q.Question[0].Name == "db.example.test." && q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("db.example.test. 30 IN A 192.0.2.10")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go srv.ActivateAndServe() //nolint:errcheck // ends with the test
	t.Cleanup(func() { _ = srv.Shutdown() })

	h.ensure("answers", addr, "", fast(Check{Type: DNS, Port: 53, DNSName: "db.example.test"}))
	h.watch(owner("answers"), addr, settle, "ready when the name is answered", ready)

	h.ensure("nxdomain", addr, "", fast(Check{Type: DNS, Port: 53, DNSName: "gone.example.test"}))
	st, _ := h.watch(owner("nxdomain"), addr, settle, "not ready on NXDOMAIN", notReady)
	if want := "DNS gone.example.test. A to " + addr.String() + ":53: NXDOMAIN"; st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}

	// Another address of the namespace, where no DNS server listens.
	silent := h.ns.IPs[6]
	h.ensure("no-server", silent, "", fast(Check{Type: DNS, Port: 53, DNSName: "db.example.test"}))
	st, _ = h.watch(owner("no-server"), silent, settle, "not ready without a server", notReady)
	if !strings.HasPrefix(st.LastError, "DNS db.example.test. A to "+silent.String()+":53: ") {
		t.Errorf("last error %q", st.LastError)
	}
}
