package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-dev/outpost/hack/run/sandbox"
)

// sandboxBackend is svc1's first backend (config/samples, story 1): the
// sandbox stands an HTTP server there, reached through svc1's port 7064.
var sandboxBackend = sandbox.Backend{IP: "192.168.1.2", Port: "31496"}

const sandboxServicePort = 7064

// startSandbox is the last step: the syncer in a network-namespace
// sandbox, or one line saying why not. It returns nil when skipped.
func startSandbox(ctx context.Context, steps *step, k8s client.Client, bin, workDir, kubeconfig string) (*sandbox.Sandbox, error) {
	if why := sandbox.Skip(); why != "" {
		steps.start("network-namespace sandbox with bin/outpost-syncer")
		fmt.Printf("skipped: %s (run `sudo make run` to see traffic through a ClusterIP)\n", why)
		return nil, nil
	}
	logPath := filepath.Join(workDir, "syncer.log")
	done := steps.start("starting bin/outpost-syncer in a network-namespace sandbox with a server at %s (log: %s)",
		net.JoinHostPort(sandboxBackend.IP, sandboxBackend.Port), logPath)
	svc := &corev1.Service{}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "svc1"}, svc); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	clusterIP := ""
	for _, ip := range svc.Spec.ClusterIPs {
		if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() != nil {
			clusterIP = ip
			break
		}
	}
	if clusterIP == "" {
		return nil, fmt.Errorf("sandbox: Service default/svc1 has no IPv4 ClusterIP (%v)", svc.Spec.ClusterIPs)
	}
	box, err := sandbox.Start(ctx, sandbox.Options{
		Syncer:     filepath.Join(bin, "outpost-syncer"),
		Kubeconfig: kubeconfig,
		LogPath:    logPath,
		Target:     net.JoinHostPort(clusterIP, strconv.Itoa(sandboxServicePort)),
		Backend:    sandboxBackend,
		// `make run` is one per machine, like its other fixed ports.
		MetricsBindAddress: syncerMetricsAddr,
	})
	if err != nil {
		return nil, err
	}
	done()
	return box, nil
}
