package probe

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode"

	"k8s.io/apimachinery/pkg/types"
)

// rawServer answers every connection on 127.0.0.1 with answer, after reading
// the request's first line; a nil answer holds the connection open without
// a word, until the test ends.
func rawServer(t *testing.T, answer []byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = bufio.NewReader(conn).ReadString('\n')
				if answer == nil {
					<-done
					return
				}
				_, _ = conn.Write(answer)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// What a hostile HTTP backend sends reaches the status only bounded and
// without control characters.
func TestHTTPCheckOfAHostileBackend(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		want   string // in the check's error
	}{
		{"megabytes of headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Junk: "+strings.Repeat("a", 1000)+"\r\n", 2000) + "\r\n",
			"server response headers exceeded 4096 bytes"},
		{"a long reason phrase", "HTTP/1.1 503 " + strings.Repeat("B", 3000) + "\r\nContent-Length: 0\r\n\r\n",
			"status 503 BBBB"},
		{"terminal escapes in the reason phrase", "HTTP/1.1 500 \x1b[2J\x1b[31mowned\x7f\r\nContent-Length: 0\r\n\r\n",
			"status 500  [2J [31mowned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawServer(t, []byte(tc.answer))
			spec, err := Spec{Checks: []Check{{Type: HTTP, Port: int(addr.Port())}}, Timeout: 5 * time.Second}.normalize()
			if err != nil {
				t.Fatal(err)
			}
			c := newChecker(spec)
			err = c.check(context.Background(), Target{Addr: addr.Addr()})
			if err == nil {
				t.Fatal("the check passed")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to contain %q", msg, tc.want)
			}
			if len(msg) > 200 {
				t.Errorf("error of %d bytes: %q", len(msg), msg)
			}
			if strings.ContainsFunc(msg, unicode.IsControl) {
				t.Errorf("error holds control characters: %q", msg)
			}
		})
	}
}

// One namespace's many slow targets, each holding a worker until its
// timeout, must not hold back another namespace's check by more than an
// interval: the workers take namespaces in turn.
func TestSlowTargetsOfOneNamespaceDoNotDelayAnother(t *testing.T) {
	silent := rawServer(t, nil)
	fast := rawServer(t, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	p := NewProber(Options{Workers: 2, Jitter: -1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Start(ctx) }()
	defer func() { cancel(); <-done }()

	// The interval leaves room for a loaded machine; first come, first
	// served would still take five of them.
	const interval, timeout = 4 * time.Second, time.Second
	slow := Spec{Checks: []Check{{Type: HTTP, Port: int(silent.Port())}}, Interval: interval, Timeout: timeout}
	// 40 slow targets are queued first: first come, first served, the two
	// workers would need 20 s to reach namespace b.
	for i := range 40 {
		owner := types.NamespacedName{Namespace: "a", Name: "slow-" + string(rune('a'+i%26)) + string(rune('a'+i/26))}
		if err := p.Ensure(owner, []Target{{Addr: silent.Addr()}}, slow); err != nil {
			t.Fatal(err)
		}
	}
	b := types.NamespacedName{Namespace: "b", Name: "web"}
	start := time.Now()
	if err := p.Ensure(b, []Target{{Addr: fast.Addr()}}, Spec{Checks: []Check{{Type: HTTP, Port: int(fast.Port())}}, Interval: interval, Timeout: timeout}); err != nil {
		t.Fatal(err)
	}
	for !p.Status(b, fast.Addr()).Known {
		if time.Since(start) > interval {
			t.Fatalf("namespace b's first check has not run %s after it was due (one interval); namespace a's slow targets hold the workers", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := p.Status(b, fast.Addr()); !st.Ready || st.LastError != "" {
		t.Errorf("namespace b: %+v", st)
	}
}
