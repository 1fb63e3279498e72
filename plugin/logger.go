package outpost

import (
	"fmt"
	"strings"

	"github.com/go-logr/logr"
)

// klogSink routes client-go's klog output (watch errors, reconnects) into
// CoreDNS' log with the plugin's prefix, so API trouble is visible.
type klogSink struct{ values []any }

func (s *klogSink) Init(logr.RuntimeInfo)  {}
func (s *klogSink) Enabled(level int) bool { return level <= 2 }
func (s *klogSink) Info(_ int, msg string, kv ...any) {
	log.Info(render(msg, nil, append(s.values, kv...)))
}
func (s *klogSink) Error(err error, msg string, kv ...any) {
	log.Error(render(msg, err, append(s.values, kv...)))
}
func (s *klogSink) WithValues(kv ...any) logr.LogSink {
	return &klogSink{values: append(append([]any(nil), s.values...), kv...)}
}
func (s *klogSink) WithName(string) logr.LogSink { return s }

func render(msg string, err error, kv []any) string {
	var b strings.Builder
	b.WriteString(msg)
	if err != nil {
		fmt.Fprintf(&b, ": %v", err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	return b.String()
}
