package version

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestResolvePrefersTheLinkerStampedValues(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.1.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "fromvcs"}}}
	got := resolve("v0.2.0", "stamped", bi)
	want := Info{Version: "v0.2.0", Revision: "stamped", GoVersion: "go1.26.0"}
	if got != want {
		t.Fatalf("resolve = %+v, want %+v", got, want)
	}
}

func TestResolveFallsBackToTheToolchainBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want Info
	}{{
		name: "go install of a tagged module",
		bi: &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.1.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}},
		want: Info{Version: "v0.1.0", Revision: "abc123", GoVersion: "go1.26.0"},
	}, {
		name: "go build in a modified checkout",
		bi: &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}}},
		want: Info{Version: Unknown, Revision: "abc123-dirty", GoVersion: "go1.26.0"},
	}, {
		name: "no build info",
		want: Info{Version: Unknown, Revision: Unknown, GoVersion: Get().GoVersion},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolve("", "", tc.bi); got != tc.want {
				t.Fatalf("resolve = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestCollectorExportsBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Info{Version: "v0.2.0", Revision: "abc123", GoVersion: "go1.26.0"}.Collector())
	want := `# HELP outpost_build_info Always 1; the labels say which Outpost build is running (module version, VCS revision, Go version).
# TYPE outpost_build_info gauge
outpost_build_info{goversion="go1.26.0",revision="abc123",version="v0.2.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "outpost_build_info"); err != nil {
		t.Fatal(err)
	}
}
