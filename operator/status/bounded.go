package status

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The API server's limits on the texts the operator writes: a longer
// condition message or Event note makes it refuse the whole status update
// or Event, which would hide exactly the failures worth reporting.
const (
	// MaxConditionMessage is metav1.Condition's message limit.
	MaxConditionMessage = 32768
	// MaxEventNote is the limit of an events.k8s.io/v1 Event's note.
	MaxEventNote = 1024
)

// JoinBounded joins items with sep in at most limit bytes: as many items
// as fit, then "…and N more" for the rest. Every list the operator puts in
// a condition message or an Event note goes through it, since a list's
// length is the user's (thousands of addresses may fail at once).
func JoinBounded(items []string, sep string, limit int) string {
	if all := strings.Join(items, sep); len(all) <= limit {
		return all
	}
	var b strings.Builder
	for i, item := range items {
		more := fmt.Sprintf("…and %d more", len(items)-i)
		piece := item
		if i > 0 {
			piece = sep + item
		}
		// The rest must still fit if this is the last item that does.
		tail := 0
		if i < len(items)-1 {
			tail = len(sep) + len(fmt.Sprintf("…and %d more", len(items)-i-1))
		}
		if b.Len()+len(piece)+tail > limit {
			if i > 0 {
				more = sep + more
			}
			if b.Len()+len(more) > limit {
				return truncate(b.String(), limit)
			}
			b.WriteString(more)
			return b.String()
		}
		b.WriteString(piece)
	}
	return b.String()
}

// truncate cuts s to at most limit bytes on a rune boundary, ending with
// "…" when it cut: the last resort for a text that is long without being a
// list (an error from the API server, say).
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := max(limit-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
