package netns

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"

	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-dev/outpost/test/lib/netns/setns"
)

// Server is a listener inside a Host that the test can stop and
// start; it is stopped when the test ends.
type Server struct {
	Addr netip.AddrPort

	netns   string // the namespace it listens in
	serve   func(net.Listener)
	mu      sync.Mutex
	ln      net.Listener
	status  atomic.Int32 // HTTP status to answer
	hits    atomic.Int64
	TLSCert *x509.Certificate // the self-signed certificate (HTTPS only)
}

// Start listens again after Stop (or the first time).
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	var ln net.Listener
	err := setns.Do(s.netns, func() error {
		var err error
		ln, err = net.Listen("tcp", s.Addr.String())
		return err
	})
	if err != nil {
		return fmt.Errorf("listen on %s in %s: %w", s.Addr, s.netns, err)
	}
	s.ln = ln
	go s.serve(ln)
	return nil
}

// Stop closes the listener: new connections are refused.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// SetStatus sets the HTTP status the server answers with (default 200).
func (s *Server) SetStatus(code int) { s.status.Store(int32(code)) }

// Hits counts accepted connections (TCP) or requests (HTTP).
func (s *Server) Hits() int64 { return s.hits.Load() }

// start starts s in the named network namespace.
func start(tb testing.TB, netns string, s *Server) *Server {
	tb.Helper()
	s.netns = netns
	s.status.Store(http.StatusOK)
	if err := s.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// StartTCP starts a TCP server at addr that accepts and closes connections.
func (n *Host) StartTCP(tb testing.TB, addr netip.AddrPort) *Server {
	return startTCP(tb, n.Name, addr)
}

// StartTCP is Host.StartTCP in a namespace of a NodeNetwork.
func (ns *NS) StartTCP(tb testing.TB, addr netip.AddrPort) *Server {
	return startTCP(tb, ns.Name, addr)
}

func startTCP(tb testing.TB, netns string, addr netip.AddrPort) *Server {
	return startTCPAnswering(tb, netns, addr, func(net.Conn) {})
}

// startTCPAnswering starts a TCP server at addr that calls answer on each
// connection, then closes it.
func startTCPAnswering(tb testing.TB, netns string, addr netip.AddrPort, answer func(net.Conn)) *Server {
	s := &Server{Addr: addr}
	s.serve = func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.hits.Add(1)
			answer(c)
			c.Close()
		}
	}
	return start(tb, netns, s)
}

// StartHTTP starts an HTTP server at addr answering every request with the
// status set by SetStatus.
func (n *Host) StartHTTP(tb testing.TB, addr netip.AddrPort) *Server {
	s := &Server{Addr: addr}
	s.serve = func(ln net.Listener) { s.httpServer().Serve(ln) } //nolint:errcheck // ends on Stop
	return start(tb, n.Name, s)
}

// StartHTTPS is StartHTTP over TLS with a fresh self-signed certificate
// for the address and the names given.
func (n *Host) StartHTTPS(tb testing.TB, addr netip.AddrPort, names ...string) *Server {
	tb.Helper()
	cert, leaf := selfSigned(tb, addr.Addr(), names)
	s := &Server{Addr: addr, TLSCert: leaf}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	s.serve = func(ln net.Listener) { s.httpServer().Serve(tls.NewListener(ln, cfg)) } //nolint:errcheck
	return start(tb, n.Name, s)
}

func (s *Server) httpServer() *http.Server {
	return &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          nil,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.hits.Add(1)
			w.WriteHeader(int(s.status.Load()))
		}),
	}
}

func selfSigned(tb testing.TB, ip netip.Addr, names []string) (tls.Certificate, *x509.Certificate) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "outpost test backend"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     names,
		IPAddresses:  []net.IP{ip.AsSlice()},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

// ServeWhoAmI starts, inside b's namespace on b's address, TCP servers on
// tcpPorts and, unless udpPort is 0, a UDP server, all answering each
// connection or datagram with one line, "<b.Name> <client address:port>"
// (ParseWhoAmI reads it). A datapath test sees from the name which backend
// a packet reached and from the client address whether the node
// masqueraded it. Everything is closed when the test ends; a port that
// cannot be bound fails the test.
func (b Backend) ServeWhoAmI(tb testing.TB, udpPort int, tcpPorts ...int) {
	tb.Helper()
	ip, err := netip.ParseAddr(b.IP)
	if err != nil {
		tb.Fatalf("backend %s: IP %q: %v", b.Name, b.IP, err)
	}
	for _, port := range tcpPorts {
		startTCPAnswering(tb, b.NS.Name, netip.AddrPortFrom(ip, uint16(port)), func(c net.Conn) {
			fmt.Fprintf(c, "%s %s\n", b.Name, c.RemoteAddr())
		})
	}
	if udpPort == 0 {
		return
	}
	addr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(udpPort)))
	var pc *net.UDPConn
	if err := b.NS.Do(func() (err error) {
		pc, err = net.ListenUDP("udp", addr)
		return err
	}); err != nil {
		tb.Fatalf("listen on udp %s in %s: %v", addr, b.NS.Name, err)
	}
	tb.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort(fmt.Appendf(nil, "%s %s\n", b.Name, from), from)
		}
	}()
}

// ParseWhoAmI reads the line a ServeWhoAmI server answers with: the name
// of the backend and the client address it saw.
func ParseWhoAmI(answer string) (backend string, client netip.AddrPort, err error) {
	f := strings.Fields(answer)
	if len(f) != 2 {
		return "", netip.AddrPort{}, fmt.Errorf("answer %q is not \"<backend> <client address:port>\"", answer)
	}
	client, err = netip.ParseAddrPort(f[1])
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("answer %q: client address: %w", answer, err)
	}
	return f[0], client, nil
}
