// Package loopback hands tests free ports on 127.0.0.1 for the servers they
// start (CoreDNS, test DNS servers), so that test packages running in
// parallel never collide.
package loopback

import (
	"fmt"
	"net"
	"testing"
)

// FreePort returns a loopback port free for both UDP and TCP.
func FreePort(tb testing.TB) int {
	tb.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	tb.Fatal("no free port")
	return 0
}
