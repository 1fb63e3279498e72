package syncer

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// listenFunc opens a listening socket, as net.Listen does.
type listenFunc func(network, address string) (net.Listener, error)

// listenIn returns a listenFunc that opens its sockets in the named network
// namespace (as made by `ip netns add`), the one --netns programs: the
// health check node ports belong with the rules. A socket stays in the
// namespace it was created in, so only its creation runs there, on a thread
// locked for the switch.
func listenIn(name string) (listenFunc, error) {
	target, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("--netns %q: %w", name, err)
	}
	return func(network, address string) (ln net.Listener, err error) {
		err = runIn(target, name, func() error {
			ln, err = net.Listen(network, address)
			return err
		})
		return ln, err
	}, nil
}

// runIn runs f on a thread switched into the network namespace target
// (named name, for errors) and switches back.
func runIn(target netns.NsHandle, name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", name, err)
	}
	ferr := f()
	// A thread that cannot go back stays locked, so Go ends it with the
	// goroutine instead of running other code in the wrong namespace.
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("leave network namespace %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// routeLocalnet is the sysctl that lets the kernel route a packet from
// 127.0.0.0/8 once it is DNATed elsewhere: localhost node ports need it.
const routeLocalnet = "/proc/sys/net/ipv4/conf/all/route_localnet"

// enableSysctl makes the sysctl file at path hold 1 in the named network
// namespace ("" for the syncer's own), as kube-proxy does for its
// localhost node ports. It writes only when needed, so that a container
// whose /proc/sys is read-only runs where the node already has it (kube-
// proxy set it, or the node's configuration). /proc/sys/net shows the
// namespace of the thread that opens it.
func enableSysctl(name, path string) error {
	set := func() error {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		return os.WriteFile(path, []byte("1"), 0o644)
	}
	if name == "" {
		return set()
	}
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("--netns %q: %w", name, err)
	}
	defer target.Close()
	return runIn(target, name, set)
}
