package v1alpha1

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// AdoptAnnotation set to "true" on an ExternalBackend lets the operator take
// over an existing hand-written selectorless Service of the same name, with
// its cluster IP, node ports, labels and annotations, and replace its
// Endpoints and mirrored EndpointSlices, instead of reporting
// ServiceConflict. kubectl outpost import writes it.
const AdoptAnnotation = "outpost.dev/adopt"

// ExternalBackendSpec declares a backend outside the cluster. Exactly one of
// Addresses or AddressGroups (a selectorless Service with EndpointSlices) and
// ExternalName (an ExternalName Service, a CNAME) is set.
//
// +kubebuilder:validation:XValidation:rule="[has(self.addresses), has(self.addressGroups), has(self.externalName)].filter(x, x).size() == 1",message="exactly one of spec.addresses, spec.addressGroups and spec.externalName must be set"
// +kubebuilder:validation:XValidation:rule="has(self.externalName) || self.headless || (has(self.ports) && size(self.ports) > 0)",message="spec.ports: at least one port is required unless spec.headless is true"
// +kubebuilder:validation:XValidation:rule="!has(self.trafficDistribution) || !has(self.externalName)",message="spec.trafficDistribution: not allowed with spec.externalName (an alias has no endpoints)"
// +kubebuilder:validation:XValidation:rule="!has(self.externalName) || !has(self.ports) || self.ports.all(p, !has(p.targetPort) || p.targetPort == p.port)",message="spec.ports[].targetPort: must equal port with spec.externalName, because a DNS alias cannot remap ports; list the backend under spec.addresses to reach a different port"
// +kubebuilder:validation:XValidation:rule="!has(self.externalName) || !has(self.healthCheck)",message="spec.healthCheck: not allowed with spec.externalName (alias mode has no endpoints to check)"
// +kubebuilder:validation:XValidation:rule="!has(self.externalName) || !has(self.resolution)",message="spec.resolution: only applies to DNS names in spec.addresses, not to spec.externalName"
// +kubebuilder:validation:XValidation:rule="!has(self.externalName) || self.serviceType == 'ClusterIP'",message="spec.serviceType: must be ClusterIP (the default) with spec.externalName"
// +kubebuilder:validation:XValidation:rule="!has(self.externalName) || !self.headless",message="spec.headless: not allowed with spec.externalName"
// +kubebuilder:validation:XValidation:rule="!self.headless || self.serviceType == 'ClusterIP'",message="spec.headless: only allowed with serviceType ClusterIP"
// +kubebuilder:validation:XValidation:rule="self.serviceType != 'ClusterIP' || !has(self.ports) || self.ports.all(p, !has(p.nodePort))",message="spec.ports[].nodePort: only allowed when spec.serviceType is NodePort or LoadBalancer"
// +kubebuilder:validation:XValidation:rule="self.sessionAffinity == 'None' || !has(self.externalName)",message="spec.sessionAffinity: not allowed with spec.externalName"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterIP) || (!has(self.externalName) && !self.headless)",message="spec.clusterIP: not allowed with spec.externalName or spec.headless (they have no cluster IP)"
// +kubebuilder:validation:XValidation:rule="has(self.clusterIP) == has(oldSelf.clusterIP) && (!has(self.clusterIP) || self.clusterIP == oldSelf.clusterIP)",message="spec.clusterIP: is immutable, like a Service's; delete and create the ExternalBackend to change it"
type ExternalBackendSpec struct {
	// Addresses are IPv4/IPv6 literals or DNS names of the backend machines.
	// Names are resolved by the operator and followed as their records change.
	// A name's last label must start with a letter, so a mistyped IP address
	// such as 192.168.1.256 is rejected instead of being looked up.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4000
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\\\.)*[a-z]([-a-z0-9]{0,61}[a-z0-9])?\\\\.?$')",messageExpression="'spec.addresses: ' + self + ' is neither an IP address nor a DNS name'"
	Addresses []string `json:"addresses,omitempty"`

	// AddressGroups list the addresses by failover priority, instead of
	// Addresses: the group of the lowest priority number that has a ready
	// address is published as ready, the others as not ready, so that
	// traffic moves to the next group when the last ready address of a
	// group fails its health check, and back when it passes again. Every
	// group is probed all the time.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:XValidation:rule="self.all(g, self.filter(h, h.priority == g.priority).size() == 1)",message="spec.addressGroups[].priority: each group needs its own priority"
	AddressGroups []AddressGroup `json:"addressGroups,omitempty"`

	// TrafficDistribution is copied to the Service. With PreferClose (or
	// PreferSameZone) and a zone on every address group, the endpoints get
	// zone hints, so that kube-proxy sends a client to the addresses of its
	// own zone when there are ready ones.
	// +optional
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	TrafficDistribution *string `json:"trafficDistribution,omitempty"`

	// ExternalName makes the Service an alias (CNAME) for this DNS name.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!isIP(self) && self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\\\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*\\\\.?$')",messageExpression="'spec.externalName: ' + self + ' is not a DNS name'"
	ExternalName string `json:"externalName,omitempty"`

	// Ports of the Service. Names are required when there is more than one.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:XValidation:rule="size(self) <= 1 || self.all(p, has(p.name))",message="spec.ports[].name: required on every port when there is more than one port"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.name) || self.filter(q, has(q.name) && q.name == p.name).size() == 1)",message="spec.ports[].name: port names must be unique"
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.filter(q, q.port == p.port && q.protocol == p.protocol).size() == 1)",message="spec.ports: each (port, protocol) pair must be unique"
	Ports []BackendPort `json:"ports,omitempty"`

	// ServiceType of the generated Service.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`

	// Headless makes the Service headless (clusterIP None): DNS answers with
	// the backend addresses themselves.
	// +optional
	// +kubebuilder:default=false
	Headless bool `json:"headless,omitempty"`

	// ClusterIP pins the Service's cluster IP instead of letting the API
	// server allocate one; it must lie in the cluster's Service range, which
	// the API server checks. Immutable. Adopting a Service keeps its cluster
	// IP without it.
	// +optional
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",messageExpression="'spec.clusterIP: ' + self + ' is not an IP address (for a Service without one, set spec.headless: true)'"
	ClusterIP string `json:"clusterIP,omitempty"`

	// SessionAffinity is copied to the Service.
	// +optional
	// +kubebuilder:default=None
	// +kubebuilder:validation:Enum=None;ClientIP
	SessionAffinity corev1.ServiceAffinity `json:"sessionAffinity,omitempty"`

	// ServiceMetadata is copied onto the Service, its EndpointSlices and Endpoints.
	// +optional
	ServiceMetadata *ServiceMetadata `json:"serviceMetadata,omitempty"`

	// Resolution controls how DNS names in Addresses are resolved.
	// +optional
	Resolution *Resolution `json:"resolution,omitempty"`

	// HealthCheck probes every address; absent, every address is ready.
	// +optional
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// Defaults of ExternalBackendSpec, as the +kubebuilder:default markers above
// write them into the CRD (a test keeps the two equal). The operator applies
// them too, for objects written before the CRD had them.
const (
	DefaultServiceType     = corev1.ServiceTypeClusterIP
	DefaultHeadless        = false
	DefaultSessionAffinity = corev1.ServiceAffinityNone
)

// BackendPort is one port of the generated Service.
type BackendPort struct {
	// Name of the port; a DNS label of at most 15 characters (an IANA service
	// name, as SRV records need). Required when there is more than one port.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",messageExpression="'spec.ports[].name: ' + self + ' must be lower case letters, digits and dashes, starting and ending with a letter or digit'"
	Name string `json:"name,omitempty"`

	// Port the Service exposes.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// TargetPort on the backend; defaults to Port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	TargetPort int32 `json:"targetPort,omitempty"`

	// Protocol of the port.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`

	// AppProtocol is copied to the Service and EndpointSlice ports.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	AppProtocol *string `json:"appProtocol,omitempty"`

	// NodePort, only with serviceType NodePort or LoadBalancer; allocated by
	// the API server when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	NodePort int32 `json:"nodePort,omitempty"`
}

// AddressGroup is one failover group of spec.addressGroups.
type AddressGroup struct {
	// Priority of the group: 0 is served first, then 1, and so on.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Priority int32 `json:"priority"`

	// Addresses of the group, as in spec.addresses. An address listed in
	// several groups belongs to the first of them in priority order.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=500
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="isIP(self) || self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\\\.)*[a-z]([-a-z0-9]{0,61}[a-z0-9])?\\\\.?$')",messageExpression="'spec.addressGroups[].addresses: ' + self + ' is neither an IP address nor a DNS name'"
	Addresses []string `json:"addresses"`

	// Zone of the group's addresses, written to each EndpointSlice
	// endpoint's zone (topology.kubernetes.io/zone of the nodes).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')",messageExpression="'spec.addressGroups[].zone: ' + self + ' must be a label value: letters, digits, dashes, underscores and dots, starting and ending with a letter or digit'"
	Zone string `json:"zone,omitempty"`
}

// DefaultProtocol is BackendPort.Protocol's default.
const DefaultProtocol = corev1.ProtocolTCP

// ServiceMetadata is copied onto the generated objects.
type ServiceMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// IPFamily selects A (IPv4) or AAAA (IPv6) queries.
// +kubebuilder:validation:Enum=IPv4;IPv6
type IPFamily string

const (
	IPv4 IPFamily = "IPv4"
	IPv6 IPFamily = "IPv6"
)

// Resolution controls how DNS names are resolved and refreshed.
// +kubebuilder:validation:XValidation:rule="duration(self.minTTL) <= duration(self.maxTTL)",message="spec.resolution.minTTL must not be greater than spec.resolution.maxTTL"
// +kubebuilder:validation:XValidation:rule="!has(self.rotationWindow) || duration(self.rotationWindow) <= duration(self.maxTTL)",message="spec.resolution.rotationWindow must not be greater than spec.resolution.maxTTL"
type Resolution struct {
	// IPFamilies to query: IPv4 (A records) and/or IPv6 (AAAA records).
	// +optional
	// +listType=set
	// +kubebuilder:default={IPv4}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	IPFamilies []IPFamily `json:"ipFamilies,omitempty"`

	// MinTTL is the shortest time an answer is kept before re-resolving.
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="spec.resolution.minTTL must be at least 1s"
	MinTTL *metav1.Duration `json:"minTTL,omitempty"`

	// MaxTTL is the longest time an answer is kept; on resolver failure the
	// last known addresses are kept for one more MaxTTL.
	// +optional
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('24h')",message="spec.resolution.maxTTL must be at most 24h"
	MaxTTL *metav1.Duration `json:"maxTTL,omitempty"`

	// RotationWindow keeps an address published for this long after the
	// last answer that listed it, for names whose DNS servers answer with
	// a rotating subset of their records: the whole set is published and
	// the EndpointSlices change only when the set does. Unset, every
	// answer replaces the addresses, so a DNS failover is followed within
	// the TTL. A few times the records' TTL is enough; at most maxTTL.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="spec.resolution.rotationWindow must not be negative"
	RotationWindow *metav1.Duration `json:"rotationWindow,omitempty"`
}

// Defaults of Resolution. IPFamilies defaults to the one family
// DefaultIPFamily.
const (
	DefaultIPFamily = IPv4
	DefaultMinTTL   = 5 * time.Second
	DefaultMaxTTL   = 30 * time.Minute
)

// HealthCheckType is the kind of probe. The single form of spec.healthCheck
// takes TCP, HTTP and HTTPS; spec.healthCheck.checks takes every type.
type HealthCheckType string

const (
	HealthCheckTCP   HealthCheckType = "TCP"
	HealthCheckHTTP  HealthCheckType = "HTTP"
	HealthCheckHTTPS HealthCheckType = "HTTPS"
	// HealthCheckGRPC asks the gRPC health service (grpc.health.v1.Health/Check).
	HealthCheckGRPC HealthCheckType = "GRPC"
	// HealthCheckDNS sends a DNS query that must be answered.
	HealthCheckDNS HealthCheckType = "DNS"
)

// HealthCheck probes each address; failing addresses stay listed but not
// ready. Either its own type, port, path and verifyCertificate describe the
// one check (the single form), or checks lists several, all of which must
// pass; interval, timeout and the thresholds apply to every check.
// +kubebuilder:validation:XValidation:rule="!has(self.checks) || (self.type == 'TCP' && !has(self.port) && !has(self.path) && !has(self.verifyCertificate))",message="spec.healthCheck.type, port, path, verifyCertificate: not allowed with spec.healthCheck.checks; describe every check as an item of checks"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || self.type != 'TCP'",message="spec.healthCheck.path: only allowed for HTTP and HTTPS checks"
// +kubebuilder:validation:XValidation:rule="!has(self.verifyCertificate) || self.type == 'HTTPS'",message="spec.healthCheck.verifyCertificate: only allowed for HTTPS checks"
// +kubebuilder:validation:XValidation:rule="duration(self.timeout) <= duration(self.interval)",message="spec.healthCheck.timeout must not be greater than spec.healthCheck.interval"
type HealthCheck struct {
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;HTTP;HTTPS
	Type HealthCheckType `json:"type,omitempty"`

	// Port on the backend; defaults to the first port's targetPort.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// Path for HTTP(S) checks; 2xx and 3xx answers are healthy.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`

	// VerifyCertificate checks the HTTPS server's certificate; off by default,
	// since backends outside the cluster often use private CAs.
	// +optional
	VerifyCertificate *bool `json:"verifyCertificate,omitempty"`

	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="spec.healthCheck.interval must be at least 1s"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('5m')",message="spec.healthCheck.interval must be at most 5m"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// +optional
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.healthCheck.timeout must be positive"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1m')",message="spec.healthCheck.timeout must be at most 1m"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// Checks are run together on every address, each on its port; the
	// address is ready only while all pass (an admin port that answers
	// does not make a dead service port ready).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Checks []Check `json:"checks,omitempty"`

	// HealthyThreshold is the number of successes that make an address ready.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=1
	HealthyThreshold int32 `json:"healthyThreshold,omitempty"`

	// UnhealthyThreshold is the number of failures that make an address not ready.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	UnhealthyThreshold int32 `json:"unhealthyThreshold,omitempty"`
}

// Defaults of HealthCheck.
const (
	DefaultHealthCheckType     = HealthCheckTCP
	DefaultHealthCheckInterval = 10 * time.Second
	DefaultHealthCheckTimeout  = 2 * time.Second
	DefaultHealthyThreshold    = 2
	DefaultUnhealthyThreshold  = 3
)

// Check is one item of spec.healthCheck.checks.
// +kubebuilder:validation:XValidation:rule="!has(self.http) || self.type == 'HTTP' || self.type == 'HTTPS'",message="spec.healthCheck.checks[].http: only allowed for HTTP and HTTPS checks"
// +kubebuilder:validation:XValidation:rule="!has(self.tls) || self.type == 'HTTPS' || self.type == 'GRPC'",message="spec.healthCheck.checks[].tls: only allowed for HTTPS and GRPC checks"
// +kubebuilder:validation:XValidation:rule="!has(self.grpc) || self.type == 'GRPC'",message="spec.healthCheck.checks[].grpc: only allowed for GRPC checks"
// +kubebuilder:validation:XValidation:rule="has(self.dns) == (self.type == 'DNS')",message="spec.healthCheck.checks[].dns: required for DNS checks (the query to send) and not allowed for others"
// +kubebuilder:validation:XValidation:rule="!has(self.port) || type(self.port) == string || (int(self.port) >= 1 && int(self.port) <= 65535)",message="spec.healthCheck.checks[].port: a number must be in 1-65535"
type Check struct {
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;HTTP;HTTPS;GRPC;DNS
	Type HealthCheckType `json:"type,omitempty"`

	// Port on the backend: the name of one of spec.ports (its targetPort)
	// or a number. Defaults to the first port's targetPort.
	// +optional
	// +kubebuilder:validation:XIntOrString
	Port *intstr.IntOrString `json:"port,omitempty"`

	// HTTP options of an HTTP or HTTPS check.
	// +optional
	HTTP *HTTPCheck `json:"http,omitempty"`

	// TLS options of an HTTPS check; a GRPC check with tls speaks TLS.
	// +optional
	TLS *TLSCheck `json:"tls,omitempty"`

	// GRPC options of a GRPC check.
	// +optional
	GRPC *GRPCCheck `json:"grpc,omitempty"`

	// DNS is the query of a DNS check; required for type DNS.
	// +optional
	DNS *DNSCheck `json:"dns,omitempty"`
}

// HTTPCheck is the request of an HTTP(S) check and the answers that pass.
type HTTPCheck struct {
	// Path of the GET request; default "/".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`

	// Headers sent with the request. A Host header replaces the address
	// (or DNS name) in the request's Host.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Headers []HTTPHeader `json:"headers,omitempty"`

	// ExpectedStatuses are the status codes that pass: codes ("204") or
	// inclusive ranges ("200-299").
	// +optional
	// +listType=atomic
	// +kubebuilder:default={"200-399"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$`
	ExpectedStatuses []string `json:"expectedStatuses,omitempty"`
}

// DefaultExpectedStatuses is HTTPCheck.ExpectedStatuses' default, the one
// range of the single form: 2xx and 3xx (redirects are not followed).
const DefaultExpectedStatuses = "200-399"

// HTTPHeader is one request header.
type HTTPHeader struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[-!#$%&'*+.^_|~0-9A-Za-z]+$`
	Name string `json:"name"`
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// TLSCheck says how a check verifies the server's certificate.
// +kubebuilder:validation:XValidation:rule="!has(self.caConfigMap) || !has(self.verifyCertificate) || self.verifyCertificate",message="spec.healthCheck.checks[].tls.verifyCertificate: must not be false with caConfigMap, which is only used to verify"
type TLSCheck struct {
	// ServerName is sent as SNI and is the name the certificate must hold;
	// defaults to the DNS name the address came from, or the address.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServerName string `json:"serverName,omitempty"`

	// VerifyCertificate checks the certificate against the system roots,
	// or caConfigMap's. Off by default unless caConfigMap is set.
	// +optional
	VerifyCertificate *bool `json:"verifyCertificate,omitempty"`

	// CAConfigMap holds the PEM CA bundle that signs the server's
	// certificate, in a ConfigMap of the backend's namespace. A changed
	// bundle applies to the next probes.
	// +optional
	CAConfigMap *ConfigMapKey `json:"caConfigMap,omitempty"`
}

// ConfigMapKey is a key of a ConfigMap in the backend's namespace.
type ConfigMapKey struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// +optional
	// +kubebuilder:default="ca.crt"
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// DefaultCAKey is ConfigMapKey.Key's default.
const DefaultCAKey = "ca.crt"

// GRPCCheck is the request of a GRPC check.
type GRPCCheck struct {
	// Service is the service name asked about; empty asks about the
	// server as a whole.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Service string `json:"service,omitempty"`
}

// DNSCheck is the query of a DNS check, sent over UDP (TCP when the
// answer is truncated). It passes when the answer is NOERROR and holds
// at least one record.
type DNSCheck struct {
	// Name to ask about.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Type of the records asked for.
	// +optional
	// +kubebuilder:default=A
	// +kubebuilder:validation:Enum=A;AAAA;CNAME;MX;NS;PTR;SOA;SRV;TXT
	Type string `json:"type,omitempty"`
}

// DefaultDNSQueryType is DNSCheck.Type's default.
const DefaultDNSQueryType = "A"

// Mode is how an ExternalBackend reaches its backend.
type Mode string

const (
	// ModeStatic: only IP literals.
	ModeStatic Mode = "Static"
	// ModeResolved: DNS names among the addresses.
	ModeResolved Mode = "Resolved"
	// ModeAlias: an ExternalName Service.
	ModeAlias Mode = "Alias"
)

// Condition types. Ready summarises the others.
const (
	ConditionReady    = "Ready"
	ConditionResolved = "Resolved"
	ConditionHealthy  = "Healthy"
)

// Reasons of the Ready condition. Each names a state a person can act on.
const (
	// ReasonEndpointsReady: at least one endpoint is ready.
	ReasonEndpointsReady = "EndpointsReady"
	// ReasonNoReadyEndpoints: no endpoint is ready (all unhealthy, or no
	// DNS answer yet).
	ReasonNoReadyEndpoints = "NoReadyEndpoints"
	// ReasonAddressesDenied: every address is refused by the address policy.
	ReasonAddressesDenied = "AddressesDenied"
	// ReasonServiceConflict: a Service of the same name belongs to someone
	// else; nothing is written, resolved or probed until it is gone.
	ReasonServiceConflict = "ServiceConflict"
	// ReasonApplyFailed: writing the Service, EndpointSlices or Endpoints failed.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonAliasConfigured: the ExternalName Service is written.
	ReasonAliasConfigured = "AliasConfigured"
	// ReasonAliasDenied: the address policy refuses spec.externalName as
	// an alias target (a name inside the cluster domain other than a
	// Service of the backend's own namespace, a cloud metadata name, a
	// denied address...); no Service is written, and one written before is
	// deleted.
	ReasonAliasDenied = "AliasDenied"
	// ReasonServiceTypeNotAllowed: spec.serviceType is not among the
	// operator's --allowed-service-types; no Service is written, and one
	// written before is deleted.
	ReasonServiceTypeNotAllowed = "ServiceTypeNotAllowed"
	// ReasonTooManyEndpoints: the addresses exceed the operator's
	// --max-endpoints-per-backend; the first that many in spec order (a
	// name's addresses sorted) are considered and the rest left out. The
	// condition's status still says whether an endpoint is ready.
	ReasonTooManyEndpoints = "TooManyEndpoints"
	// ReasonTooManyEndpointPorts: endpoints times ports exceed the
	// operator's --max-endpoint-ports; nothing is written, and what was
	// written before is deleted.
	ReasonTooManyEndpointPorts = "TooManyEndpointPorts"
)

// Reasons of the Resolved condition.
const (
	// ReasonResolvedByClient: alias mode, the client follows the CNAME.
	ReasonResolvedByClient = "ResolvedByClient"
	// ReasonStaticAddresses: every address is an IP literal.
	ReasonStaticAddresses = "StaticAddresses"
	// ReasonInvalidResolution: spec.resolution cannot be used.
	ReasonInvalidResolution = "InvalidResolution"
	// ReasonResolving: a name has not had its first answer yet.
	ReasonResolving = "Resolving"
	// ReasonNamesResolved: every name's last answer was good.
	ReasonNamesResolved = "NamesResolved"
	// ReasonAnswersTruncated: every name's last answer was good, but some
	// held more records than the operator's --max-records-per-answer; the
	// smallest addresses were kept, so the choice does not change from one
	// answer to the next.
	ReasonAnswersTruncated = "AnswersTruncated"

	// The failures of a name's last resolution (the first failing name's
	// reason is the condition's). Its last known addresses stay published
	// for one more maxTTL.

	// ReasonTimeout: no DNS server answered within the timeout.
	ReasonTimeout = "Timeout"
	// ReasonServerFailure: the servers answered SERVFAIL.
	ReasonServerFailure = "ServerFailure"
	// ReasonNameNotFound: the name (or a CNAME target) does not exist (NXDOMAIN).
	ReasonNameNotFound = "NameNotFound"
	// ReasonRefused: the servers refused the query (REFUSED).
	ReasonRefused = "Refused"
	// ReasonNoAddresses: the name exists but has no record of any requested family.
	ReasonNoAddresses = "NoAddresses"
	// ReasonQueryFailed: any other error (network unreachable, bad answer, CNAME loop).
	ReasonQueryFailed = "QueryFailed"
)

// Reasons of the Healthy condition.
const (
	// ReasonHealthCheckDisabled: no spec.healthCheck, every address is ready.
	ReasonHealthCheckDisabled = "HealthCheckDisabled"
	// ReasonInvalidHealthCheck: spec.healthCheck cannot be used.
	ReasonInvalidHealthCheck = "InvalidHealthCheck"
	// ReasonUnhealthy: some addresses fail their checks.
	ReasonUnhealthy = "Unhealthy"
	// ReasonAllHealthy: every checked address passes.
	ReasonAllHealthy = "AllHealthy"
)

// Reasons of the Events about an ExternalBackend.
const (
	// EventCreated, EventUpdated and EventDeleted: the operator wrote or
	// removed generated objects (Deleted also when it recreates the Service
	// because its clusterIP cannot change).
	EventCreated = "Created"
	EventUpdated = "Updated"
	EventDeleted = "Deleted"
	// EventAdopted: the operator took over a hand-written Service (see
	// AdoptAnnotation).
	EventAdopted = "Adopted"
	// EventServiceConflict: the Service name is taken by someone else's Service.
	EventServiceConflict = "ServiceConflict"
	// EventAddressDenied: addresses, or the alias target, newly refused by
	// the address policy.
	EventAddressDenied = "AddressDenied"
	// EventServiceTypeNotAllowed, EventTooManyEndpoints and
	// EventTooManyEndpointPorts: the backend hit one of the operator's
	// limits (the Ready condition's reasons of the same names).
	EventServiceTypeNotAllowed = ReasonServiceTypeNotAllowed
	EventTooManyEndpoints      = ReasonTooManyEndpoints
	EventTooManyEndpointPorts  = ReasonTooManyEndpointPorts
	// EventAddressesChanged: a DNS name's answers came or went.
	EventAddressesChanged = "AddressesChanged"
	// EventEndpointsUnhealthy and EventEndpointsHealthy: health checks
	// turned addresses not ready, or ready again.
	EventEndpointsUnhealthy = "EndpointsUnhealthy"
	EventEndpointsHealthy   = "EndpointsHealthy"
	// EventFailedOver and EventFailedBack: the group of spec.addressGroups
	// published as ready changed, to a higher priority number (the
	// preferred group has no ready address) or back to a lower one.
	EventFailedOver = "FailedOver"
	EventFailedBack = "FailedBack"
)

// EndpointStatus is one address the operator considered.
type EndpointStatus struct {
	// Address is the IP address.
	Address string `json:"address"`
	// Host is the DNS name the address was resolved from.
	// +optional
	Host string `json:"host,omitempty"`
	// Ready is true when the address is written as ready.
	Ready bool `json:"ready"`
	// Expires is when a resolved address is next re-resolved; while its
	// name fails, when the address is dropped.
	// +optional
	Expires *metav1.Time `json:"expires,omitempty"`
	// LastResolved is when a DNS answer last listed the address; the
	// status is brought up to date at least every quarter of maxTTL, not
	// at every refresh. A restarted operator (or a new leader) keeps the
	// address, while the name cannot be resolved, until one maxTTL after
	// this time (or until expires, if later), never longer.
	// +optional
	LastResolved *metav1.Time `json:"lastResolved,omitempty"`
	// Priority is the failover priority of the address's group in
	// spec.addressGroups.
	// +optional
	Priority *int32 `json:"priority,omitempty"`
	// Zone is the zone of the address's group in spec.addressGroups.
	// +optional
	Zone string `json:"zone,omitempty"`
	// Reason the address is not ready or was left out, e.g. Denied,
	// Unhealthy or Standby.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is a human readable explanation of Reason.
	// +optional
	Message string `json:"message,omitempty"`
}

// Reasons of an EndpointStatus row.
const (
	// EndpointDenied: the address policy refused the address; it is
	// written nowhere.
	EndpointDenied = "Denied"
	// EndpointUnhealthy: the health check failed; the address is written
	// as not ready.
	EndpointUnhealthy = "Unhealthy"
	// EndpointStandby: the address is healthy, but a group of
	// spec.addressGroups with a lower priority number has a ready
	// address; it is written as not ready until that group has none.
	EndpointStandby = "Standby"
)

// ExternalBackendStatus is what the operator observed and wrote.
type ExternalBackendStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Mode is Static, Resolved or Alias.
	// +optional
	Mode Mode `json:"mode,omitempty"`
	// ServiceName is the generated Service.
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// Conditions: Ready, Resolved, Healthy.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Endpoints has one row per address, including those left out.
	// +optional
	// +listType=atomic
	Endpoints []EndpointStatus `json:"endpoints,omitempty"`
	// ReadyEndpoints counts the ready addresses written.
	ReadyEndpoints int32 `json:"readyEndpoints"`
	// TotalEndpoints counts the addresses written, ready or not.
	TotalEndpoints int32 `json:"totalEndpoints"`
	// Ready is ReadyEndpoints/TotalEndpoints, for kubectl.
	// +optional
	Ready string `json:"ready,omitempty"`
	// AdoptedAt is when the operator took over the existing Service of this
	// name (see the outpost.dev/adopt annotation); unset when it created it.
	// +optional
	AdoptedAt *metav1.Time `json:"adoptedAt,omitempty"`
}

// ExternalBackend turns addresses outside the cluster into a Service.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=xb,categories=outpost
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name: must be a DNS-1035 label (at most 63 lower case letters, digits and dashes, starting with a letter) because it names the generated Service"
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ExternalBackend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExternalBackendSpec   `json:"spec"`
	Status ExternalBackendStatus `json:"status,omitempty"`
}

// ExternalBackendList is a list of ExternalBackends.
//
// +kubebuilder:object:root=true
type ExternalBackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ExternalBackend `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ExternalBackend{}, &ExternalBackendList{})
}
