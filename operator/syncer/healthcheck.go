package syncer

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// HealthCheck is what one Service's health check node port reports: a
// LoadBalancer Service with externalTrafficPolicy: Local is only sent to
// nodes with local endpoints, and its load balancer learns which by
// probing spec.healthCheckNodePort on every node.
type HealthCheck struct {
	Port uint16
	// LocalEndpoints counts the ready endpoints on this node, by address.
	LocalEndpoints int
}

// healthCheckOf is the health check of a Service on a node, if it needs
// one. Endpoints are counted in the Service's primary IP family, by
// distinct address, as kube-proxy's primary proxier counts them.
func healthCheckOf(svc *v1.Service, slices []*discovery.EndpointSlice, node string) (HealthCheck, bool) {
	if svc.Spec.Type != v1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal ||
		svc.Spec.HealthCheckNodePort <= 0 || svc.Spec.HealthCheckNodePort > 65535 {
		return HealthCheck{}, false
	}
	family := discovery.AddressTypeIPv4
	if ips := svc.Spec.ClusterIPs; len(ips) > 0 {
		if a, err := netip.ParseAddr(ips[0]); err == nil && a.Is6() {
			family = discovery.AddressTypeIPv6
		}
	}
	local := map[string]bool{}
	for _, s := range slices {
		if s.AddressType != family {
			continue
		}
		for _, e := range s.Endpoints {
			ready := e.Conditions.Ready == nil || *e.Conditions.Ready
			if ready && node != "" && e.NodeName != nil && *e.NodeName == node && len(e.Addresses) > 0 {
				local[e.Addresses[0]] = true
			}
		}
	}
	return HealthCheck{Port: uint16(svc.Spec.HealthCheckNodePort), LocalEndpoints: len(local)}, true
}

// HealthChecks returns the health checks the tracked Services need on node.
func (t *ChangeTracker) HealthChecks(node string) map[types.NamespacedName]HealthCheck {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[types.NamespacedName]HealthCheck{}
	for nn, svc := range t.services {
		var slices []*discovery.EndpointSlice
		for _, s := range t.slices[nn] {
			slices = append(slices, s)
		}
		if hc, ok := healthCheckOf(svc, slices, node); ok {
			out[nn] = hc
		}
	}
	return out
}

// HealthServer serves the health check node ports as kube-proxy does: on
// each port an HTTP server answering any path with 200 when the node has
// local endpoints for the Service (and the syncer is healthy), 503
// otherwise, with kube-proxy's JSON body and headers.
type HealthServer struct {
	// Addresses to listen on; empty means every address.
	addresses []netip.Addr
	// healthy reports whether the syncer keeps the rules up to date
	// (kube-proxy's serviceProxyHealthy); nil means always.
	healthy func() bool
	log     logr.Logger
	// listen opens the ports: net.Listen, or in the --netns namespace.
	listen listenFunc

	mu       sync.RWMutex
	services map[types.NamespacedName]*healthService
}

type healthService struct {
	port      uint16
	endpoints int
	servers   []*http.Server
}

// NewHealthServer returns a server with no ports open; Sync opens them.
func NewHealthServer(addresses []netip.Addr, healthy func() bool, log logr.Logger) *HealthServer {
	return &HealthServer{addresses: addresses, healthy: healthy, log: log, listen: net.Listen, services: map[types.NamespacedName]*healthService{}}
}

// Sync makes the open ports and reported counts those of checks: it
// closes the ports of Services no longer listed (or moved), opens the new
// ones and updates every count. A port that cannot be opened is reported
// in the error, and retried by the next Sync.
func (h *HealthServer) Sync(checks map[types.NamespacedName]HealthCheck) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for nn, s := range h.services {
		if c, ok := checks[nn]; !ok || c.Port != s.port {
			s.close()
			delete(h.services, nn)
		}
	}
	for nn, c := range checks {
		s, ok := h.services[nn]
		if !ok {
			var err error
			if s, err = h.open(nn, c.Port); err != nil {
				errs = append(errs, fmt.Errorf("health check node port %d of Service %s: %w", c.Port, nn, err))
				continue
			}
			h.services[nn] = s
		}
		s.endpoints = c.LocalEndpoints
	}
	return errors.Join(errs...)
}

// Close closes every port.
func (h *HealthServer) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for nn, s := range h.services {
		s.close()
		delete(h.services, nn)
	}
}

func (h *HealthServer) open(nn types.NamespacedName, port uint16) (*healthService, error) {
	s := &healthService{port: port}
	addrs := h.addresses
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}}
	}
	for _, a := range addrs {
		host := ""
		if a.IsValid() {
			host = a.String()
		}
		ln, err := h.listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			s.close()
			return nil, err
		}
		srv := &http.Server{Handler: h.handler(nn), ReadHeaderTimeout: 5 * time.Second}
		s.servers = append(s.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.log.Error(err, "Health check server stopped", "service", nn, "address", ln.Addr())
			}
		}()
	}
	return s, nil
}

func (s *healthService) close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
}

// handler answers for one Service, with kube-proxy's response.
func (h *HealthServer) handler(nn types.NamespacedName) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.mu.RLock()
		s, ok := h.services[nn]
		count := 0
		if ok {
			count = s.endpoints
		}
		h.mu.RUnlock()
		healthy := h.healthy == nil || h.healthy()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(count))
		if count > 0 && healthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
			nn.Namespace, nn.Name, count, healthy)
	})
}
