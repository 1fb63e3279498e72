package resolve

import "fmt"

// Reason is a machine-readable cause of a failed resolution. The values are
// valid metav1.Condition reasons, so the reconciler can copy them into
// the Resolved condition as they are.
type Reason string

const (
	// ReasonTimeout: no server answered within the timeout.
	ReasonTimeout Reason = "Timeout"
	// ReasonServerFailure: the servers answered SERVFAIL.
	ReasonServerFailure Reason = "ServerFailure"
	// ReasonNameNotFound: the name (or a CNAME target) does not exist (NXDOMAIN).
	ReasonNameNotFound Reason = "NameNotFound"
	// ReasonRefused: the servers refused the query (REFUSED).
	ReasonRefused Reason = "Refused"
	// ReasonNoAddresses: the name exists but has no record of any requested family.
	ReasonNoAddresses Reason = "NoAddresses"
	// ReasonQueryFailed: any other error (network unreachable, bad answer, CNAME loop).
	ReasonQueryFailed Reason = "QueryFailed"
)

// Error is a failed resolution: a Reason for machines and a Message for people.
type Error struct {
	Reason  Reason
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}
