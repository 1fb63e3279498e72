// Package status decides what one reconcile of an ExternalBackend reports:
// the row of every address, the endpoints to publish, the addresses to
// probe, the conditions and the Events. It is a pure function of the
// ExternalBackend and of what the resolver and the prober know, handed in as
// plain values, so every reason a user can see is tested here without an API
// server; the reconciler gathers the inputs and applies the result.
package status

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
	"github.com/outpost-dev/outpost/operator/desired"
	"github.com/outpost-dev/outpost/operator/internal/text"
	"github.com/outpost-dev/outpost/operator/probe"
	"github.com/outpost-dev/outpost/operator/resolve"
)

// Name is one DNS name of spec.addresses with what the resolver knows of it.
type Name struct {
	Name  string
	State resolve.State
}

// Inputs are what one reconcile gathered about an ExternalBackend.
type Inputs struct {
	// Conflict, when not empty, says why the Service name is not ours.
	// Nothing else is looked at then: a backend that cannot publish is
	// neither resolved nor probed.
	Conflict string
	// Names are the DNS names of spec.addresses (see DNSNames), in spec
	// order, with the resolver's state.
	Names []Name
	// ResolveErr is the resolver's refusal of spec.resolution.
	ResolveErr error
	// Allow is the address policy: nil for an address that may be published.
	Allow func(netip.Addr) error
	// Health is the prober's verdict on each of ProbeTargets' addresses;
	// nil without a healthCheck, and then every allowed address is ready. An
	// address it does not list is ready, as the prober treats a new target.
	Health map[netip.Addr]probe.Status
	// ProbeErr is the prober's refusal of spec.healthCheck.
	ProbeErr error
	// AliasErr is the address policy's refusal of spec.externalName
	// (policy.CheckExternalName), nil when the alias is allowed.
	AliasErr error
	// Limits are the operator's bounds on what one backend may publish.
	Limits Limits
	// Published is what an earlier run published (ReadPublished): an
	// address published as not ready starts not ready at the prober.
	Published Published
	// Adopting: this run takes over a hand-written Service (Ownership.Adopt);
	// once the writes succeed, status.adoptedAt says when.
	Adopting bool
	// Now stamps the conditions whose status changes.
	Now time.Time
}

// Limits are the operator's bounds on one ExternalBackend, one per flag.
// Zero values bound nothing.
type Limits struct {
	// AllowedServiceTypes (--allowed-service-types) are the spec.serviceType
	// values the cluster accepts; empty accepts every type.
	AllowedServiceTypes []corev1.ServiceType
	// MaxEndpoints (--max-endpoints-per-backend) bounds the distinct
	// addresses considered: the first ones in spec order, each name's
	// addresses sorted, so the choice does not churn.
	MaxEndpoints int
	// MaxEndpointPorts (--max-endpoint-ports) bounds endpoints times ports,
	// the size of what the Service's EndpointSlices and every node's
	// datapath hold for it.
	MaxEndpointPorts int
}

// Flags naming the limits in messages, so that a user knows what to ask the
// cluster admin for.
const (
	FlagAllowedServiceTypes = "--allowed-service-types"
	FlagMaxEndpoints        = "--max-endpoints-per-backend"
	FlagMaxEndpointPorts    = "--max-endpoint-ports"
	FlagMaxRecords          = "--max-records-per-answer"
)

// maxMessage bounds text the backend controls (a probe's error, a DNS
// error naming a CNAME target) in a row or condition message.
const maxMessage = 256

// Event is one Event to record about the ExternalBackend.
type Event struct {
	Type   string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason string // one of v1alpha1.Event*
	Action string
	Note   string
}

// Result is what Compute decided.
type Result struct {
	// Rows are status.endpoints: one per distinct address, in spec order.
	Rows []v1alpha1.EndpointStatus
	// Endpoints are the allowed addresses, to publish (desired.Compute).
	Endpoints []desired.Endpoint
	// Events tell the user what changed since the last status.
	Events []Event
	// Refused, when not empty, is the Ready reason for which nothing may be
	// published: the reconciler writes no Service, EndpointSlices or
	// Endpoints and deletes those it wrote before.
	Refused string

	xb *v1alpha1.ExternalBackend
	in Inputs
	// refusal explains Refused.
	refusal string
	// considered and found count the distinct addresses kept under
	// Limits.MaxEndpoints and those there were.
	considered, found int
}

// DNSNames lists the DNS names among spec.addresses, which the resolver
// must be asked about; the rest are IP literals.
func DNSNames(xb *v1alpha1.ExternalBackend) []string {
	var names []string
	for _, a := range desired.SpecAddresses(xb) {
		if _, err := netip.ParseAddr(a.Value); err != nil && !slices.Contains(names, a.Value) {
			names = append(names, a.Value)
		}
	}
	return names
}

// ProbeTargets are the addresses the prober must check for a backend with
// a healthCheck: only those the policy allows and the limits keep, so the
// operator never becomes a port scanner for the cluster's users, nor spends
// its probes on what it will not publish. in.Health is not looked at.
func ProbeTargets(xb *v1alpha1.ExternalBackend, in Inputs) []probe.Target {
	if reason, _ := Refusal(xb, in); reason != "" {
		return nil
	}
	all, _ := rows(xb, in)
	if reason, _ := endpointPortsRefusal(xb, in, all); reason != "" {
		return nil
	}
	var targets []probe.Target
	for _, row := range all {
		if row.Reason != v1alpha1.EndpointDenied {
			addr := netip.MustParseAddr(row.Address)
			targets = append(targets, probe.Target{Addr: addr, Host: row.Host, StartNotReady: in.Published.NotReady[addr]})
		}
	}
	return targets
}

// Compute decides the rows, the endpoints and the Events of xb.
func Compute(xb *v1alpha1.ExternalBackend, in Inputs) Result {
	res := Result{xb: xb, in: in}
	if in.Conflict != "" {
		if c := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonServiceConflict {
			res.Events = []Event{{corev1.EventTypeWarning, v1alpha1.EventServiceConflict, "Reconcile", in.Conflict}}
		}
		return res
	}
	if reason, message := Refusal(xb, in); reason != "" {
		return res.refuse(reason, message)
	}
	if desired.IsAlias(xb) {
		return res
	}
	res.Rows, res.found = rows(xb, in)
	res.considered = len(res.Rows)
	failOver(res.Rows)
	if reason, message := endpointPortsRefusal(xb, in, res.Rows); reason != "" {
		res.Rows = nil
		return res.refuse(reason, message)
	}
	if res.found > res.considered && readyReason(xb) != v1alpha1.ReasonTooManyEndpoints {
		res.Events = append(res.Events, Event{corev1.EventTypeWarning, v1alpha1.EventTooManyEndpoints, "Limit", res.tooManyEndpoints()})
	}
	for _, row := range res.Rows {
		if row.Reason != v1alpha1.EndpointDenied {
			res.Endpoints = append(res.Endpoints, desired.Endpoint{Address: netip.MustParseAddr(row.Address), Ready: row.Ready, Zone: row.Zone})
		}
	}
	res.Events = append(res.Events, addressEvents(xb.Status.Endpoints, res.Rows)...)
	res.Events = append(res.Events, failoverEvents(xb.Status.Endpoints, res.Rows)...)
	return res
}

// Refusal says why nothing of xb may be published whatever its addresses
// resolve to: the policy denies its alias target, or the cluster does not
// accept its Service type. It returns the Ready reason and message, or ""
// when xb may be published. The reconciler asks first, so that a refused
// backend is neither resolved nor probed.
func Refusal(xb *v1alpha1.ExternalBackend, in Inputs) (reason, message string) {
	switch {
	case desired.IsAlias(xb) && in.AliasErr != nil:
		return v1alpha1.ReasonAliasDenied, fmt.Sprintf("no Service is written: %v", in.AliasErr)
	case len(in.Limits.AllowedServiceTypes) > 0 && !slices.Contains(in.Limits.AllowedServiceTypes, serviceType(xb)):
		return v1alpha1.ReasonServiceTypeNotAllowed, fmt.Sprintf(
			"spec.serviceType: %s is not allowed in this cluster (the operator's %s is %s); no Service is written; use one of those types or ask the cluster admin",
			serviceType(xb), FlagAllowedServiceTypes, joinTypes(in.Limits.AllowedServiceTypes))
	}
	return "", ""
}

// endpointPortsRefusal refuses a backend whose endpoints times ports exceed
// Limits.MaxEndpointPorts, naming both numbers.
func endpointPortsRefusal(xb *v1alpha1.ExternalBackend, in Inputs, rows []v1alpha1.EndpointStatus) (reason, message string) {
	endpoints := 0
	for _, row := range rows {
		if row.Reason != v1alpha1.EndpointDenied {
			endpoints++
		}
	}
	ports := len(xb.Spec.Ports)
	if limit := in.Limits.MaxEndpointPorts; limit > 0 && endpoints*ports > limit {
		return v1alpha1.ReasonTooManyEndpointPorts, fmt.Sprintf(
			"%d endpoints x %d ports = %d endpoint ports, more than the operator's %s=%d; nothing is written; list fewer addresses or ports, or split the backend",
			endpoints, ports, endpoints*ports, FlagMaxEndpointPorts, limit)
	}
	return "", ""
}

// refuse makes res publish nothing, with a Warning Event the first time.
func (res Result) refuse(reason, message string) Result {
	res.Refused, res.refusal = reason, message
	if readyReason(res.xb) != reason {
		event := reason // EventServiceTypeNotAllowed, EventTooManyEndpointPorts
		if reason == v1alpha1.ReasonAliasDenied {
			event = v1alpha1.EventAddressDenied
		}
		res.Events = append(res.Events, Event{corev1.EventTypeWarning, event, "Refuse", message})
	}
	return res
}

// tooManyEndpoints explains which addresses Limits.MaxEndpoints left out.
func (res Result) tooManyEndpoints() string {
	return fmt.Sprintf("%d distinct addresses, more than the operator's %s=%d: only the first %d in spec order (each name's addresses sorted) are considered, the rest are left out",
		res.found, FlagMaxEndpoints, res.in.Limits.MaxEndpoints, res.considered)
}

// readyReason is the reason of xb's last Ready condition, "" without one.
func readyReason(xb *v1alpha1.ExternalBackend) string {
	if c := meta.FindStatusCondition(xb.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// serviceType is spec.serviceType with its default.
func serviceType(xb *v1alpha1.ExternalBackend) corev1.ServiceType {
	if xb.Spec.ServiceType == "" {
		return v1alpha1.DefaultServiceType
	}
	return xb.Spec.ServiceType
}

func joinTypes(types []corev1.ServiceType) string {
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

// mode is how xb reaches its backend.
func mode(xb *v1alpha1.ExternalBackend) v1alpha1.Mode {
	switch {
	case desired.IsAlias(xb):
		return v1alpha1.ModeAlias
	case len(DNSNames(xb)) > 0:
		return v1alpha1.ModeResolved
	default:
		return v1alpha1.ModeStatic
	}
}

// rows turns the spec's literal addresses and the resolved names into one
// row per distinct address, in spec order: denied addresses are kept as rows
// with reason Denied; the rest are ready unless their health check says
// otherwise. Past Limits.MaxEndpoints distinct addresses the rest are left
// out; found counts them all.
func rows(xb *v1alpha1.ExternalBackend, in Inputs) (out []v1alpha1.EndpointStatus, found int) {
	seen := map[netip.Addr]bool{}
	add := func(ip netip.Addr, row v1alpha1.EndpointStatus) {
		ip = ip.Unmap()
		if seen[ip] {
			return
		}
		seen[ip] = true
		if found++; in.Limits.MaxEndpoints > 0 && found > in.Limits.MaxEndpoints {
			return
		}
		row.Address = ip.String()
		if err := in.Allow(ip); err != nil {
			row.Reason, row.Message = v1alpha1.EndpointDenied, err.Error()
		} else if st, probed := in.Health[ip]; probed && !st.Ready {
			row.Reason, row.Message = v1alpha1.EndpointUnhealthy, text.Excerpt(st.LastError, maxMessage)
			if !st.Known {
				row.Message = "published as not ready before the operator started; ready after healthyThreshold passing checks"
			}
		} else {
			row.Ready = true
		}
		out = append(out, row)
	}
	states := map[string]resolve.State{}
	for _, n := range in.Names {
		states[n.Name] = n.State
	}
	for _, a := range desired.SpecAddresses(xb) {
		group := v1alpha1.EndpointStatus{Zone: a.Zone}
		if a.Grouped {
			group.Priority = &a.Priority
		}
		if ip, err := netip.ParseAddr(a.Value); err == nil {
			add(ip, group)
			continue
		}
		for _, r := range states[a.Value].Addresses {
			row := group
			row.Host, row.Expires = a.Value, secondsOf(r.Expires)
			if !r.Confirmed.IsZero() {
				row.LastResolved = secondsOf(r.Confirmed)
			}
			add(r.Addr, row)
		}
	}
	return out, found
}

// secondsOf is t as the API stores it: to the second.
func secondsOf(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.Truncate(time.Second))
	return &mt
}

// passing says whether a row's address passes its health checks: it is
// ready, or standing by for a preferred group.
func passing(row v1alpha1.EndpointStatus) bool {
	return row.Ready || row.Reason == v1alpha1.EndpointStandby
}

// addressEvents tell the user, in one Event per kind, which addresses were
// newly denied, which resolved addresses came and went, and which changed
// health, by comparing the new rows with the last status. One Event per
// kind, because the events API folds Events that differ only in their note
// into a series, which would hide all but one.
func addressEvents(before, after []v1alpha1.EndpointStatus) []Event {
	previous := map[string]v1alpha1.EndpointStatus{}
	for _, row := range before {
		previous[row.Address] = row
	}
	current := map[string]bool{}
	var denied, added, removed, unhealthy, healthy []string
	for _, row := range after {
		current[row.Address] = true
		old, existed := previous[row.Address]
		isDenied, wasDenied := row.Reason == v1alpha1.EndpointDenied, old.Reason == v1alpha1.EndpointDenied
		switch {
		case isDenied && (!existed || !wasDenied):
			denied = append(denied, row.Message)
		case row.Host != "" && !existed:
			added = append(added, row.Address+" ("+row.Host+")")
		}
		// A group standing by is healthy: failover has its own Events.
		if passes := passing(row); existed && !wasDenied && !isDenied && passing(old) != passes {
			if passes {
				healthy = append(healthy, row.Address)
			} else {
				unhealthy = append(unhealthy, fmt.Sprintf("%s: %s", row.Address, row.Message))
			}
		}
	}
	for _, row := range before {
		if row.Host != "" && !current[row.Address] {
			removed = append(removed, row.Address+" ("+row.Host+")")
		}
	}
	var events []Event
	if len(denied) > 0 {
		prefix := fmt.Sprintf("%d address(es) left out by the address policy: ", len(denied))
		events = append(events, Event{corev1.EventTypeWarning, v1alpha1.EventAddressDenied, "Deny",
			prefix + JoinBounded(denied, "; ", MaxEventNote-len(prefix))})
	}
	if len(added) > 0 || len(removed) > 0 {
		const format = "DNS answers changed: added [%s], removed [%s]"
		half := (MaxEventNote - len(format)) / 2
		events = append(events, Event{corev1.EventTypeNormal, v1alpha1.EventAddressesChanged, "Resolve",
			fmt.Sprintf(format, JoinBounded(added, ", ", half), JoinBounded(removed, ", ", half))})
	}
	if len(unhealthy) > 0 {
		const prefix = "not ready: "
		events = append(events, Event{corev1.EventTypeWarning, v1alpha1.EventEndpointsUnhealthy, "Probe",
			prefix + JoinBounded(unhealthy, "; ", MaxEventNote-len(prefix))})
	}
	if len(healthy) > 0 {
		slices.Sort(healthy)
		const prefix = "ready again: "
		events = append(events, Event{corev1.EventTypeNormal, v1alpha1.EventEndpointsHealthy, "Probe",
			prefix + JoinBounded(healthy, ", ", MaxEventNote-len(prefix))})
	}
	return events
}

// Status is the new status once the children were written, applyErr being
// the failure to write them (nil when there was nothing to write). A
// condition keeps its lastTransitionTime while its status does not change.
// With a conflict only Ready is set: Resolved and Healthy keep what was last
// observed, since nothing is resolved or probed.
func (r Result) Status(applyErr error) v1alpha1.ExternalBackendStatus {
	xb, in := r.xb, r.in
	st := *xb.Status.DeepCopy()
	st.ObservedGeneration = xb.Generation
	st.Mode = mode(xb)
	st.ServiceName = xb.Name
	if r.Refused != "" {
		st.ServiceName = ""
	}
	if in.Adopting && r.Refused == "" && applyErr == nil {
		st.AdoptedAt = &metav1.Time{Time: in.Now}
	}
	st.Endpoints = r.Rows
	st.ReadyEndpoints, st.TotalEndpoints = 0, 0
	denied := 0
	for _, row := range r.Rows {
		switch {
		case row.Reason == v1alpha1.EndpointDenied:
			denied++
		case row.Ready:
			st.ReadyEndpoints++
			st.TotalEndpoints++
		default:
			st.TotalEndpoints++
		}
	}
	st.Ready = fmt.Sprintf("%d/%d", st.ReadyEndpoints, st.TotalEndpoints)

	var set setCondition = func(condType string, ok bool, reason, format string, args ...any) {
		condStatus := metav1.ConditionFalse
		if ok {
			condStatus = metav1.ConditionTrue
		}
		// SetStatusCondition keeps the old lastTransitionTime when the
		// status did not change.
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type:               condType,
			Status:             condStatus,
			Reason:             reason,
			Message:            truncate(fmt.Sprintf(format, args...), MaxConditionMessage),
			ObservedGeneration: xb.Generation,
			LastTransitionTime: metav1.NewTime(in.Now),
		})
	}

	if in.Conflict != "" {
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonServiceConflict, "%s", in.Conflict)
		return st
	}
	setResolved(xb, in, set)
	setHealthy(xb, in, r.Rows, set)
	switch {
	case r.Refused != "":
		// What was written before is being deleted: whether that
		// failed shows in the Events and the next reconcile.
		set(v1alpha1.ConditionReady, false, r.Refused, "%s", r.refusal)
	case applyErr != nil:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonApplyFailed, "%v", applyErr)
	case r.found > r.considered:
		set(v1alpha1.ConditionReady, st.ReadyEndpoints > 0, v1alpha1.ReasonTooManyEndpoints, "%d/%d endpoints ready; %s",
			st.ReadyEndpoints, st.TotalEndpoints, r.tooManyEndpoints())
	case desired.IsAlias(xb):
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonAliasConfigured, "Service %s is an alias for %s", xb.Name, xb.Spec.ExternalName)
	case st.ReadyEndpoints > 0:
		set(v1alpha1.ConditionReady, true, v1alpha1.ReasonEndpointsReady, "%d/%d endpoints ready%s", st.ReadyEndpoints, st.TotalEndpoints, serving(r.Rows))
	case st.TotalEndpoints == 0 && denied > 0:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonAddressesDenied, "all %d addresses are denied by the address policy; see status.endpoints", denied)
	default:
		set(v1alpha1.ConditionReady, false, v1alpha1.ReasonNoReadyEndpoints, "0/%d endpoints ready", st.TotalEndpoints)
	}
	return st
}

// setCondition sets one condition: true or false, a reason and a message.
type setCondition func(condType string, ok bool, reason, format string, args ...any)

// setResolved explains where the addresses came from and, for DNS names,
// whether the last answers were good.
func setResolved(xb *v1alpha1.ExternalBackend, in Inputs, set setCondition) {
	const cond = v1alpha1.ConditionResolved
	if desired.IsAlias(xb) {
		set(cond, true, v1alpha1.ReasonResolvedByClient, "%s is resolved by the client through the CNAME", xb.Spec.ExternalName)
		return
	}
	if len(in.Names) == 0 {
		set(cond, true, v1alpha1.ReasonStaticAddresses, "all addresses are IP literals")
		return
	}
	if in.ResolveErr != nil {
		set(cond, false, v1alpha1.ReasonInvalidResolution, "%v", in.ResolveErr)
		return
	}
	var pending, failing, truncated []string
	reason := ""
	addresses := 0
	for _, n := range in.Names {
		addresses += len(n.State.Addresses)
		if n.State.Omitted > 0 {
			truncated = append(truncated, fmt.Sprintf("%s: %d record(s) left out", n.Name, n.State.Omitted))
		}
		switch {
		case n.State.Err != nil:
			if reason == "" {
				reason = n.State.Err.Reason
			}
			msg := fmt.Sprintf("%s: %s", n.Name, text.Excerpt(n.State.Err.Message, maxMessage))
			if kept := len(n.State.Addresses); kept > 0 {
				msg += fmt.Sprintf(" (keeping %d last known address(es) until %s)", kept,
					n.State.Addresses[0].Expires.UTC().Format(time.RFC3339))
			}
			failing = append(failing, msg)
		case !n.State.Resolved && len(n.State.Addresses) > 0:
			pending = append(pending, fmt.Sprintf("%s (keeping its %d last known address(es) meanwhile)", n.Name, len(n.State.Addresses)))
		case !n.State.Resolved:
			pending = append(pending, n.Name)
		}
	}
	switch {
	case len(failing) > 0:
		set(cond, false, reason, "%s", JoinBounded(failing, "; ", MaxConditionMessage))
	case len(pending) > 0:
		const prefix = "waiting for the first answer for "
		set(cond, false, v1alpha1.ReasonResolving, "%s%s", prefix, JoinBounded(pending, ", ", MaxConditionMessage-len(prefix)))
	case len(truncated) > 0:
		set(cond, true, v1alpha1.ReasonAnswersTruncated, "%d name(s) resolved to %d address(es); answers hold more records than the operator's %s, the smallest addresses are kept: %s",
			len(in.Names), addresses, FlagMaxRecords, JoinBounded(truncated, "; ", MaxConditionMessage/2))
	default:
		set(cond, true, v1alpha1.ReasonNamesResolved, "%d name(s) resolved to %d address(es)", len(in.Names), addresses)
	}
}

// setHealthy summarises the health checks.
func setHealthy(xb *v1alpha1.ExternalBackend, in Inputs, rows []v1alpha1.EndpointStatus, set setCondition) {
	const cond = v1alpha1.ConditionHealthy
	hc := xb.Spec.HealthCheck
	switch {
	case desired.IsAlias(xb) || hc == nil:
		set(cond, true, v1alpha1.ReasonHealthCheckDisabled, "no healthCheck: every address is ready")
		return
	case in.ProbeErr != nil:
		set(cond, false, v1alpha1.ReasonInvalidHealthCheck, "%v", in.ProbeErr)
		return
	}
	var failing []string
	probed := 0
	for _, row := range rows {
		if row.Reason == v1alpha1.EndpointDenied {
			continue
		}
		probed++
		if row.Reason == v1alpha1.EndpointUnhealthy {
			failing = append(failing, fmt.Sprintf("%s: %s", row.Address, row.Message))
		}
	}
	if len(failing) > 0 {
		prefix := fmt.Sprintf("%d/%d address(es) fail %s checks: ", len(failing), probed, checkTypes(hc))
		set(cond, false, v1alpha1.ReasonUnhealthy, "%s%s", prefix, JoinBounded(failing, "; ", MaxConditionMessage-len(prefix)))
		return
	}
	set(cond, true, v1alpha1.ReasonAllHealthy, "%d/%d address(es) pass %s checks", probed, probed, hc.Type)
}

// Ownership says whether xb may write the Service of its name. live is that
// Service, nil when there is none.
type Ownership struct {
	// Conflict, when not empty, says that live belongs to someone else,
	// and what to do about it.
	Conflict string
	// Adopt: live was written by hand and xb asked, with
	// v1alpha1.AdoptAnnotation, to take it over in place.
	Adopt bool
	// Recreate: live is ours but must be deleted and created again, because
	// headless changed and a Service's clusterIP cannot.
	Recreate bool
}

// ServiceOwnership decides who owns the Service of xb's name.
func ServiceOwnership(xb *v1alpha1.ExternalBackend, live *corev1.Service) Ownership {
	switch {
	case live == nil:
		return Ownership{}
	case !metav1.IsControlledBy(live, xb):
		if xb.Annotations[v1alpha1.AdoptAnnotation] != "true" {
			return Ownership{Conflict: fmt.Sprintf("Service %s/%s already exists and is not managed by this ExternalBackend; delete or rename it, and the ExternalBackend will take the name, or annotate the ExternalBackend %s: \"true\" to take over a hand-written selectorless Service in place", live.Namespace, live.Name, v1alpha1.AdoptAnnotation)}
		}
		if refusal := adoptionRefusal(xb, live); refusal != "" {
			return Ownership{Conflict: fmt.Sprintf("Service %s/%s cannot be adopted: %s", live.Namespace, live.Name, refusal)}
		}
		return Ownership{Adopt: true}
	}
	return Ownership{Recreate: headlessChanged(xb, live)}
}

// adoptionRefusal says why live cannot be taken over in place, "" when it can.
func adoptionRefusal(xb *v1alpha1.ExternalBackend, live *corev1.Service) string {
	if owner := metav1.GetControllerOf(live); owner != nil {
		return fmt.Sprintf("it is controlled by %s %s; only Services nobody controls are adopted", owner.Kind, owner.Name)
	}
	if len(live.Spec.Selector) > 0 {
		return "it has a selector, so the endpoints controller writes its endpoints from Pods; remove spec.selector from the Service first, or choose another name for the ExternalBackend"
	}
	if headlessChanged(xb, live) {
		return fmt.Sprintf("its clusterIP is %q and spec.headless is %t, and adopting would mean deleting and recreating it; set spec.headless to match the Service", live.Spec.ClusterIP, xb.Spec.Headless)
	}
	return ""
}

// headlessChanged says whether live and xb disagree on being headless: a
// Service's clusterIP cannot change, so live would have to be recreated.
func headlessChanged(xb *v1alpha1.ExternalBackend, live *corev1.Service) bool {
	headless := live.Spec.ClusterIP == corev1.ClusterIPNone
	return !desired.IsAlias(xb) && live.Spec.Type != corev1.ServiceTypeExternalName &&
		live.Spec.ClusterIP != "" && headless != xb.Spec.Headless
}

// checkTypes names the kinds of checks hc runs, "TCP" or "HTTPS+GRPC".
func checkTypes(hc *v1alpha1.HealthCheck) string {
	if len(hc.Checks) == 0 {
		return string(hc.Type)
	}
	var types []string
	for _, c := range hc.Checks {
		if !slices.Contains(types, string(c.Type)) {
			types = append(types, string(c.Type))
		}
	}
	return strings.Join(types, "+")
}
