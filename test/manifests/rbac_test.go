package manifests

import (
	"fmt"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
)

// access is one question put to the API server's RBAC authorizer.
type access struct {
	verb, group, resource, namespace string
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.namespace != "" {
		return fmt.Sprintf("%s %s in %s", a.verb, r, a.namespace)
	}
	return a.verb + " " + r
}

// Least privilege, asked of the real RBAC authorizer after the install tree is
// installed: each component can do its job and nothing next to it.
func TestServiceAccountsHaveLeastPrivilege(t *testing.T) {
	installed(t)
	for _, tc := range []struct {
		account string // namespace/name
		allowed []access
		denied  []access
	}{{
		account: "outpost-system/outpost-syncer",
		allowed: []access{
			{"list", "", "services", ""}, {"watch", "", "services", ""},
			{"list", "discovery.k8s.io", "endpointslices", ""}, {"watch", "discovery.k8s.io", "endpointslices", ""},
			{"create", "", "events", "default"}, {"patch", "", "events", "default"},
		},
		denied: []access{
			{"get", "", "secrets", "default"}, {"list", "", "secrets", ""},
			{"update", "", "services", "default"}, {"create", "discovery.k8s.io", "endpointslices", "default"},
			{"list", "", "pods", ""}, {"get", "", "nodes", ""}, {"list", "", "nodes", ""}, {"update", "", "nodes", ""},
			{"create", "events.k8s.io", "events", "default"},
			{"list", "outpost.dev", "externalbackends", ""},
		},
	}, {
		account: "kube-system/outpost-coredns",
		allowed: []access{
			{"list", "", "services", ""}, {"watch", "", "services", ""},
			{"list", "discovery.k8s.io", "endpointslices", ""}, {"watch", "discovery.k8s.io", "endpointslices", ""},
			{"list", "", "namespaces", ""}, {"watch", "", "namespaces", ""},
		},
		denied: []access{
			{"list", "", "pods", ""}, {"get", "", "secrets", "kube-system"}, {"list", "", "secrets", ""},
			{"create", "", "services", "default"}, {"list", "", "nodes", ""}, {"create", "", "events", "kube-system"},
		},
	}, {
		account: "outpost-system/outpost-operator",
		allowed: []access{
			// Leader election, in its own namespace only.
			{"get", "coordination.k8s.io", "leases", "outpost-system"},
			{"create", "coordination.k8s.io", "leases", "outpost-system"},
			{"update", "coordination.k8s.io", "leases", "outpost-system"},
			// Its job as the README's "Operator" section gives it (rules
			// generated from its RBAC markers).
			{"list", "outpost.dev", "externalbackends", ""}, {"watch", "outpost.dev", "externalbackends", ""},
			{"update", "outpost.dev", "externalbackends/status", "default"},
			// blockOwnerDeletion on its children, under OwnerReferencesPermissionEnforcement.
			{"update", "outpost.dev", "externalbackends/finalizers", "default"},
			{"create", "", "services", "default"}, {"patch", "", "services", "default"}, {"delete", "", "services", "default"},
			{"create", "discovery.k8s.io", "endpointslices", "default"}, {"patch", "discovery.k8s.io", "endpointslices", "default"},
			{"delete", "discovery.k8s.io", "endpointslices", "default"},
			{"create", "", "endpoints", "default"}, {"patch", "", "endpoints", "default"},
			{"create", "events.k8s.io", "events", "default"},
			// CA bundles of HTTPS and GRPC health checks (tls.caConfigMap).
			{"get", "", "configmaps", "default"}, {"list", "", "configmaps", ""}, {"watch", "", "configmaps", ""},
			// Who may read its metrics (--metrics-secure) is the API server's call.
			{"create", "authentication.k8s.io", "tokenreviews", ""}, {"create", "authorization.k8s.io", "subjectaccessreviews", ""},
		},
		denied: []access{
			{"create", "coordination.k8s.io", "leases", "kube-system"},
			{"get", "", "secrets", "default"}, {"list", "", "secrets", ""},
			{"update", "", "configmaps", "default"},
			{"create", "", "pods", "default"}, {"update", "", "nodes", ""},
			// Writes are server-side applies: no code updates these.
			{"update", "", "services", "default"}, {"update", "discovery.k8s.io", "endpointslices", "default"},
			{"patch", "outpost.dev", "externalbackends/status", "default"}, {"update", "outpost.dev", "externalbackends", "default"},
			{"delete", "apiextensions.k8s.io", "customresourcedefinitions", ""},
		},
	}} {
		t.Run(tc.account, func(t *testing.T) {
			for _, a := range tc.allowed {
				if !allowed(t, tc.account, a) {
					t.Errorf("%s may not %s; it needs to", tc.account, a)
				}
			}
			for _, a := range tc.denied {
				if allowed(t, tc.account, a) {
					t.Errorf("%s may %s; least privilege says it must not", tc.account, a)
				}
			}
		})
	}
}

// allowed asks the API server whether the ServiceAccount account
// (namespace/name) may perform a, exactly as it would authorize a request
// made with the account's token.
func allowed(t *testing.T, account string, a access) bool {
	t.Helper()
	ns, name, _ := strings.Cut(account, "/")
	resource, sub, _ := strings.Cut(a.resource, "/")
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: resource, Subresource: sub, Namespace: a.namespace,
		},
	}}
	if err := k8s.Create(t.Context(), review); err != nil {
		t.Fatalf("SubjectAccessReview for %s %s: %v", account, a, err)
	}
	return review.Status.Allowed
}
