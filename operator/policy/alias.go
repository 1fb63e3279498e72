package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultClusterDomain is the cluster's DNS domain unless --cluster-domain
// says otherwise.
const DefaultClusterDomain = "cluster.local"

// DefaultDeniedHostnames are the names under which clouds serve instance
// metadata, refused as alias targets unless --denied-hostnames says otherwise:
//
//   - metadata.google.internal: GCP's metadata server;
//   - metadata: the same, completed by the google.internal search domain of
//     GCP's resolv.conf;
//   - instance-data, instance-data.ec2.internal: AWS's name for its metadata
//     service, answered by the VPC resolver (ec2.internal is us-east-1's
//     search domain; other regions' REGION.compute.internal names must be
//     added by the admin);
//   - metadata.tencentyun.com: Tencent Cloud's metadata service;
//   - api.metadata.cloud.ibm.com: IBM Cloud VPC's metadata service.
//
// Azure, OCI and Alibaba Cloud serve metadata by address only, which the
// address checks refuse.
const DefaultDeniedHostnames = "metadata.google.internal,metadata,instance-data,instance-data.ec2.internal,metadata.tencentyun.com,api.metadata.cloud.ibm.com"

type aliasRules struct {
	clusterDomain string          // lower case, no trailing dot
	deniedHosts   map[string]bool // lower case, no trailing dot
}

func defaultAliasRules() aliasRules {
	r, err := parseAliasRules(DefaultClusterDomain, DefaultDeniedHostnames)
	if err != nil {
		panic(err) // the defaults are constants
	}
	return r
}

// SetAliasRules sets the cluster's DNS domain (--cluster-domain) and the
// host names no alias may point at (--denied-hostnames, comma-separated),
// which Parse sets to DefaultClusterDomain and DefaultDeniedHostnames. Call it
// before the policy is shared.
func (p *Policy) SetAliasRules(clusterDomain, deniedHostnames string) error {
	r, err := parseAliasRules(clusterDomain, deniedHostnames)
	if err != nil {
		return err
	}
	p.aliases = r
	return nil
}

func parseAliasRules(clusterDomain, deniedHostnames string) (aliasRules, error) {
	r := aliasRules{clusterDomain: canonicalName(clusterDomain), deniedHosts: map[string]bool{}}
	if errs := validation.IsDNS1123Subdomain(r.clusterDomain); len(errs) > 0 {
		return aliasRules{}, fmt.Errorf("--cluster-domain: %q is not a DNS name: %s", clusterDomain, strings.Join(errs, "; "))
	}
	for _, s := range strings.Split(deniedHostnames, ",") {
		name := canonicalName(strings.TrimSpace(s))
		if name == "" {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return aliasRules{}, fmt.Errorf("--denied-hostnames: %q is not a DNS name: %s", s, strings.Join(errs, "; "))
		}
		r.deniedHosts[name] = true
	}
	return r, nil
}

// canonicalName is name as DNS compares it: case-insensitive, and the same
// with or without the trailing dot of a fully qualified name.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// CheckExternalName returns nil when an ExternalBackend in namespace may be
// an alias (a CNAME) for externalName, or an error naming spec.externalName,
// the rule and the fix. A CNAME makes every client of the Service resolve
// the target with the cluster's DNS, so a target inside the cluster domain
// reaches what the cluster DNS answers for it: another namespace's Service,
// or with kube-dns's "pods insecure", any IP at all written as a Pod name.
func (p *Policy) CheckExternalName(namespace, externalName string) error {
	name := canonicalName(externalName)
	if addr, err := netip.ParseAddr(name); err == nil {
		if err := p.Check(addr); err != nil {
			return fmt.Errorf("spec.externalName: %w", err)
		}
		return nil
	}
	if reason := p.aliases.deniedReason(namespace, name); reason != "" {
		return fmt.Errorf("spec.externalName: %s %s", externalName, reason)
	}
	return nil
}

// deniedReason says why the canonical name may not be aliased by a backend
// in namespace, as the rest of a sentence that starts with the name; "" when
// it may.
func (r aliasRules) deniedReason(namespace, name string) string {
	labels := strings.Split(name, ".")
	last := labels[len(labels)-1]
	sameNamespaceService := "SERVICE." + namespace + ".svc." + r.clusterDomain
	switch {
	case r.deniedHosts[name]:
		return "is a cloud metadata host name, denied by --denied-hostnames"
	case last == "localhost":
		return "is under localhost, which resolves to the loopback address (RFC 6761)"
	case name == r.clusterDomain || strings.HasSuffix(name, "."+r.clusterDomain):
		inCluster := labels[:len(labels)-strings.Count(r.clusterDomain, ".")-1]
		if len(inCluster) == 3 && inCluster[1] == namespace && inCluster[2] == "svc" {
			return ""
		}
		if len(inCluster) >= 3 && inCluster[len(inCluster)-1] == "pod" {
			return fmt.Sprintf("is a Pod name in the cluster domain %s, which the cluster DNS may answer with whatever address is written in it; an alias may only name a Service of its own namespace (%s)", r.clusterDomain, sameNamespaceService)
		}
		return fmt.Sprintf("is inside the cluster domain %s but not a Service of namespace %s; an alias may only name a Service of its own namespace (%s)", r.clusterDomain, namespace, sameNamespaceService)
	case len(labels) == 1:
		return "is a single-label name, which resolvers complete with their search list (into the cluster domain or a cloud's internal domain); give the fully qualified name"
	case last == "svc" || last == "pod":
		return fmt.Sprintf("is a cluster name without the cluster domain, which resolvers complete with their search list; give the fully qualified name (%s)", sameNamespaceService)
	case strings.Trim(last, "0123456789") == "":
		return "ends in an all-numeric label, which resolvers and proxies may read as an IPv4 address (no top-level domain is all-numeric); give the address under spec.addresses, where it is checked"
	}
	return ""
}
