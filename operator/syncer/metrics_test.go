package syncer

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegistryExportsBuildInfo(t *testing.T) {
	newTestSyncer(t) // registers the metrics
	if n, err := testutil.GatherAndCount(Registry, "outpost_build_info"); err != nil || n != 1 {
		t.Fatalf("outpost_build_info series on the syncer's /metrics = %d (%v), want 1", n, err)
	}
}
