package iptablestest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The components that run in a cluster never carry the test doubles or the
// test libraries: what ships is what was reviewed as production code.
func TestClusterComponentsDoNotImportTestCode(t *testing.T) {
	for _, binary := range []string{
		"github.com/outpost-dev/outpost/operator/cmd/outpost-operator",
		"github.com/outpost-dev/outpost/operator/cmd/outpost-syncer",
		"github.com/outpost-dev/outpost/plugin/coredns",
	} {
		out, err := exec.Command("go", "list", "-deps", binary).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", binary, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasSuffix(dep, "/operator/syncer/iptablestest") || strings.Contains(dep, "/outpost/test/") {
				t.Errorf("%s imports %s", binary, dep)
			}
		}
	}
}
