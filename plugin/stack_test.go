package outpost

import (
	"context"
	"net"
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// The server runs each UDP query on a new goroutine (2 KiB of stack), and
// decoding the question grows that stack to 4 KiB before ServeDNS is called.
// These are the stack bytes around the handler in CoreDNS 1.15 with
// miekg/dns 1.1.73 (frame sizes from go tool objdump, rounded up): what the
// server's frames hold above ServeDNS, and what the UDP write below the
// ResponseWriter adds (ScrubWriter.Write down to the sendmsg syscall).
const (
	serverFrames = 800
	udpWrite     = 1150
	// unpackFrame is miekg/dns.UnpackDomainName's frame, which makes the
	// first doubling.
	unpackFrame = 1200
)

// TestCommonQueriesFitTheServersStack guards the throughput of the plugin:
// the common queries must be answered without growing the goroutine's
// stack a second time (a copy of the whole stack, which cost more than the
// lookup itself; see ServeDNS).
func TestCommonQueriesFitTheServersStack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes every frame size; make test runs without it")
	}
	o := newTestOutpost(t)
	// A collection could shrink the test goroutine's stack between the
	// first doubling and the query, and make the query grow it again.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"svc1.testns.svc.cluster.local.", dns.TypeA},               // ClusterIP
		{"hdls1.testns.svc.cluster.local.", dns.TypeA},              // headless
		{"db-0.hdls1.testns.svc.cluster.local.", dns.TypeA},         // endpoint name
		{"nopods.testns.svc.cluster.local.", dns.TypeAAAA},          // NODATA
		{"nosuch.testns.svc.cluster.local.", dns.TypeA},             // NXDOMAIN
		{"198-51-100-2.hdls1.testns.svc.cluster.local.", dns.TypeA}, // dashed IP
		{"_http._tcp.svc1.testns.svc.cluster.local.", dns.TypeSRV},
		{"_http._tcp.hdls1.testns.svc.cluster.local.", dns.TypeSRV}, // with glue
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR},
	} {
		t.Run(dns.TypeToString[q.qtype]+" "+q.name, func(t *testing.T) {
			moved := 0
			for range rounds {
				if answerOnServerStack(t, o, q.name, q.qtype) {
					moved++
				}
			}
			// A lookup chain that outgrew the stack moves it every time;
			// the allocator's slow path (a fresh span for a size class)
			// moves it now and then, in production too.
			if moved > rounds/2 {
				t.Errorf("answering grew the stack a second time in %d of %d rounds: a frame on the lookup chain grew (go build -gcflags=-S ./plugin, locals=)", moved, rounds)
			}
		})
	}
}

// rounds is how often each query is answered: enough that the allocator's
// occasional deeper path (about one round in ten for the SRV query with
// glue) cannot reach half of them.
const rounds = 32

// answerOnServerStack answers one query the way the server does, on a new
// goroutine grown once, with the server's frames above ServeDNS and the UDP
// write's below the writer, and reports whether the stack moved.
func answerOnServerStack(t *testing.T, o *Outpost, name string, qtype uint16) bool {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	udp := &udpWriter{}
	w := request.NewScrubWriter(r, udp)
	moved := make(chan bool)
	go func() {
		growOnce()
		withServerFrames(func() {
			var marker byte
			before := uintptr(unsafe.Pointer(&marker))
			o.ServeDNS(context.Background(), w, r)
			moved <- before != uintptr(unsafe.Pointer(&marker))
		})
	}()
	m := <-moved
	if udp.written == 0 {
		t.Fatalf("no answer written")
	}
	return m
}

// frameIndex is read at run time so that the compiler keeps the arrays below.
var (
	frameIndex = 0
	frameSink  byte
)

//go:noinline
func growOnce() {
	var frame [unpackFrame]byte
	frame[frameIndex] = 1
	frameSink = frame[frameIndex]
}

//go:noinline
func withServerFrames(f func()) {
	var frame [serverFrames]byte
	frame[frameIndex] = 1
	f()
	frameSink = frame[frameIndex]
}

// udpWriter is a ResponseWriter whose writes take the stack a UDP write
// takes.
type udpWriter struct {
	test.ResponseWriter
	written int
}

func (w *udpWriter) Write(b []byte) (int, error) {
	w.written += sendmsg(len(b))
	return len(b), nil
}

func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *udpWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
}

//go:noinline
func sendmsg(n int) int {
	var frame [udpWrite]byte
	frame[frameIndex] = 1
	frameSink = frame[frameIndex]
	return n
}
