package outpost

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// CoreDNS' metrics plugin serves the default registry.
func TestDefaultRegistryExportsBuildInfo(t *testing.T) {
	if n, err := testutil.GatherAndCount(prometheus.DefaultGatherer, "outpost_build_info"); err != nil || n != 1 {
		t.Fatalf("outpost_build_info series = %d (%v), want 1", n, err)
	}
}
