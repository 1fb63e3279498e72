// Package version tells which Outpost build is running. `make build` and
// `make image` stamp Version and Revision with -ldflags -X; a plain `go build`
// or `go install` falls back to what the Go toolchain recorded (the module
// version and the VCS revision). Every binary prints it for --version, logs
// it at start and exports it as the outpost_build_info metric.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at build time:
//
//	-ldflags "-X github.com/outpost-dev/outpost/internal/version.Version=v0.3.0
//	          -X github.com/outpost-dev/outpost/internal/version.Revision=0123abc"
var (
	Version  string
	Revision string
)

// Unknown stands for a version or revision neither the linker nor the
// toolchain recorded (e.g. `go test` binaries, or a build outside git).
const Unknown = "unknown"

// Info identifies a build.
type Info struct {
	Version   string
	Revision  string
	GoVersion string
}

// Get returns this binary's build information.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Version, Revision, bi)
}

// resolve prefers the linker-stamped values and fills the rest from the
// toolchain's build information (nil when the binary has none).
func resolve(version, revision string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi != nil {
		info.GoVersion = bi.GoVersion
		// "(devel)" is what a build inside the main module's tree records:
		// not a version.
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Revision == "" {
			info.Revision = vcsRevision(bi.Settings)
		}
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	if info.Revision == "" {
		info.Revision = Unknown
	}
	return info
}

// vcsRevision is the commit `go build` recorded, marked -dirty when the tree
// had uncommitted changes (as `git describe --dirty` does).
func vcsRevision(settings []debug.BuildSetting) string {
	var rev string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" && modified {
		rev += "-dirty"
	}
	return rev
}

// String is the --version output: "NAME VERSION (revision REVISION, GOVERSION)".
func (i Info) String(binary string) string {
	return fmt.Sprintf("%s %s (revision %s, %s)", binary, i.Version, i.Revision, i.GoVersion)
}

// KeysAndValues are the fields for a structured start-up log line.
func (i Info) KeysAndValues() []any {
	return []any{"version", i.Version, "revision", i.Revision, "goVersion", i.GoVersion}
}

// Collector is the outpost_build_info gauge: always 1, its labels carry the
// build, so a query can join any Outpost metric with the version producing it
// (the convention of Prometheus' own *_build_info).
func (i Info) Collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "outpost_build_info",
		Help:        "Always 1; the labels say which Outpost build is running (module version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
