package netns

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestServersInNamespaceAreReachableAndStoppable(t *testing.T) {
	n := NewHost(t)
	tcp := n.StartTCP(t, netip.AddrPortFrom(n.IPs[0], 8080))
	web := n.StartHTTP(t, netip.AddrPortFrom(n.IPs6[1], 8081))

	c, err := net.DialTimeout("tcp", tcp.Addr.String(), time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", tcp.Addr, err)
	}
	c.Close()

	// The listener lives in the namespace, not in the test's: the same
	// address is not local here (it is reached over the veth).
	out, err := n.Command("ip", "-o", "addr", "show").CombinedOutput()
	if err != nil || !strings.Contains(string(out), n.IPs[0].String()) {
		t.Errorf("address %s not inside %s: %v %s", n.IPs[0], n.Name, err, out)
	}
	if local, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); strings.Contains(string(local), n.IPs[0].String()+"/") {
		t.Errorf("address %s is on the test side too", n.IPs[0])
	}

	client := http.Client{Timeout: time.Second}
	web.SetStatus(http.StatusServiceUnavailable)
	resp, err := client.Get("http://" + web.Addr.String() + "/")
	if err != nil {
		t.Fatalf("GET over IPv6: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || web.Hits() != 1 {
		t.Errorf("status %d hits %d", resp.StatusCode, web.Hits())
	}

	tcp.Stop()
	if c, err := net.DialTimeout("tcp", tcp.Addr.String(), time.Second); err == nil {
		c.Close()
		t.Fatal("connected to a stopped server")
	} else if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("stopped server: %v, want connection refused", err)
	}
	if err := tcp.Start(); err != nil {
		t.Fatal(err)
	}
	c, err = net.DialTimeout("tcp", tcp.Addr.String(), time.Second)
	if err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
	c.Close()
}

func TestWhoAmIServersNameTheBackendAndTheClient(t *testing.T) {
	RequireRoot(t)
	nodeNet := NewNodeNetwork(t, NodeNetworkSpec{Prefix: "nt", ClientIP: "203.0.113.2", NodeIP: "203.0.113.1", BridgeIP: "198.51.100.1", Backends: 2})
	b2 := nodeNet.Backends[1]
	// ask sends one line from the node to b2 and reads the answer.
	ask := func(network string, port int) (string, netip.AddrPort, error) {
		var c net.Conn
		if err := nodeNet.Node.Do(func() (err error) {
			c, err = net.DialTimeout(network, net.JoinHostPort(b2.IP, strconv.Itoa(port)), time.Second)
			return err
		}); err != nil {
			return "", netip.AddrPort{}, err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", netip.AddrPort{}, err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "", netip.AddrPort{}, err
		}
		name, client, err := ParseWhoAmI(line)
		if want := netip.MustParseAddrPort(c.LocalAddr().String()); err == nil && client != want {
			t.Errorf("%s:%d saw the client as %s, want %s", network, port, client, want)
		}
		return name, client, err
	}

	t.Run("serving", func(t *testing.T) {
		b2.ServeWhoAmI(t, 5353, 8080, 31337)
		for _, q := range []struct {
			network string
			port    int
		}{{"tcp", 8080}, {"tcp", 31337}, {"udp", 5353}} {
			if name, _, err := ask(q.network, q.port); err != nil || name != "b2" {
				t.Errorf("%s:%d answered %q (%v), want b2", q.network, q.port, name, err)
			}
		}
	})
	// The test that started them has ended: they are closed.
	if _, _, err := ask("tcp", 8080); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("tcp 8080 after its test ended: %v, want connection refused", err)
	}
	if _, _, err := ask("udp", 5353); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("udp 5353 after its test ended: %v, want connection refused", err)
	}

	if _, _, err := ParseWhoAmI("b1\n"); err == nil {
		t.Error("ParseWhoAmI accepted an answer without a client address")
	}
}

func TestNamespacesDoNotCollideAndAreRemoved(t *testing.T) {
	var names []string
	t.Run("two at once", func(t *testing.T) {
		a, b := NewHost(t), NewHost(t)
		if a.Name == b.Name || a.HostIP == b.HostIP || a.IPs[0] == b.IPs[0] {
			t.Fatalf("two namespaces share %s/%s", a.Name, a.HostIP)
		}
		names = append(names, a.Name, b.Name)
	})
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.Contains(string(out), name+" ") || strings.Contains(string(out), name+"\n") {
			t.Errorf("namespace %s left behind: %s", name, out)
		}
	}
	links, _ := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if strings.Contains(string(links), "outp") {
		// Another package may hold a slot right now; only our slots must be gone.
		for _, name := range names {
			host := "outp" + strings.TrimPrefix(name, "outpost-test-") + "h"
			if strings.Contains(string(links), host+"@") {
				t.Errorf("veth %s left behind", host)
			}
		}
	}
}
