package faults

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// built is one binary of bin/, built at most once per test binary.
type built struct {
	once sync.Once
	path string
	err  error
}

// builds holds a *built by package.
var builds sync.Map

// binary builds bin/NAME from pkg (what `make build` does) the first time a
// test of this binary asks, so no fault test runs a stale binary, and
// returns its path.
func binary(t *testing.T, name, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &built{})
	b := v.(*built)
	b.once.Do(func() {
		b.path = filepath.Join(testenv.RepoRoot(), "bin", name)
		b.err = testenv.Build(b.path, pkg)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func syncerBinary(t *testing.T) string {
	return binary(t, "outpost-syncer", "./operator/cmd/outpost-syncer")
}

func operatorBinary(t *testing.T) string {
	return binary(t, "outpost-operator", "./operator/cmd/outpost-operator")
}
