// Package text makes text that a backend or its DNS server controls (an
// HTTP status line, an error naming a CNAME target) fit for a status or
// Event message.
package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Excerpt replaces control characters and invalid UTF-8 with spaces, and
// past max bytes cuts the text at a character boundary and marks the cut
// with "...", so that what a backend sends can neither bloat the
// ExternalBackend's status nor forge lines in a terminal or a log.
func Excerpt(s string, max int) string {
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.Is(unicode.Bidi_Control, r) {
			return ' '
		}
		return r
	}, s)
	if len(clean) <= max {
		return clean
	}
	cut := max - len("...")
	for cut > 0 && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return clean[:cut] + "..."
}
