package resolve

import "fmt"

// Error is a failed resolution: a Reason for machines and a Message for
// people. Reason is one of the Resolved condition's failure reasons in
// package v1alpha1 (v1alpha1.ReasonTimeout, ...), so the reconciler copies it
// into the condition as it is.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}
