package syncer

import (
	"fmt"
	"net"
	"runtime"

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
	return func(network, address string) (net.Listener, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("current network namespace: %w", err)
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("enter network namespace %s: %w", name, err)
		}
		ln, listenErr := net.Listen(network, address)
		// A thread that cannot go back stays locked, so Go ends it with the
		// goroutine instead of running other code in the wrong namespace.
		if err := netns.Set(orig); err != nil {
			if ln != nil {
				ln.Close()
			}
			return nil, fmt.Errorf("leave network namespace %s: %w", name, err)
		}
		runtime.UnlockOSThread()
		return ln, listenErr
	}, nil
}
