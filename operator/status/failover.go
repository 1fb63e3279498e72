package status

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// failOver keeps ready only the rows of the serving group of
// spec.addressGroups, the one of the lowest priority number with a ready
// row; the ready rows of the other groups become Standby. Rows without a
// group (spec.addresses) are left alone, and so is everything when no group
// has a ready row: there is nothing better to move to.
func failOver(rows []v1alpha1.EndpointStatus) {
	serving, ok := servingPriority(rows)
	if !ok {
		return
	}
	for i := range rows {
		row := &rows[i]
		if row.Ready && row.Priority != nil && *row.Priority != serving {
			row.Ready = false
			row.Reason, row.Message = v1alpha1.EndpointStandby,
				fmt.Sprintf("healthy, standing by while the group of priority %d has a ready address", serving)
		}
	}
}

// servingPriority is the lowest priority number among the ready grouped
// rows; ok is false when there is none.
func servingPriority(rows []v1alpha1.EndpointStatus) (priority int32, ok bool) {
	for _, row := range rows {
		if row.Ready && row.Priority != nil && (!ok || *row.Priority < priority) {
			priority, ok = *row.Priority, true
		}
	}
	return priority, ok
}

// failoverEvents tell the user when the serving group changed: a Warning
// when traffic moved away from the preferred group, a Normal Event when it
// came back.
func failoverEvents(before, after []v1alpha1.EndpointStatus) []Event {
	was, wasServing := servingPriority(before)
	is, isServing := servingPriority(after)
	if !wasServing || !isServing || was == is {
		return nil
	}
	var ready []string
	for _, row := range after {
		if row.Ready && row.Priority != nil && *row.Priority == is {
			ready = append(ready, row.Address)
		}
	}
	slices.Sort(ready)
	note := fmt.Sprintf("serving the group of priority %d instead of %d: ready %s", is, was, JoinBounded(ready, ", ", MaxEventNote/2))
	if is > was {
		return []Event{{corev1.EventTypeWarning, v1alpha1.EventFailedOver, "Failover", note + fmt.Sprintf("; the group of priority %d has no ready address", was)}}
	}
	return []Event{{corev1.EventTypeNormal, v1alpha1.EventFailedBack, "Failover", note}}
}

// serving says, for the Ready condition, which group of spec.addressGroups
// is serving and how many healthy addresses stand by; "" without groups.
func serving(rows []v1alpha1.EndpointStatus) string {
	priority, ok := servingPriority(rows)
	if !ok {
		return ""
	}
	standby := 0
	for _, row := range rows {
		if row.Reason == v1alpha1.EndpointStandby {
			standby++
		}
	}
	return fmt.Sprintf("; serving the group of priority %d, %d healthy address(es) of other groups standing by", priority, standby)
}
