package version_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// The binaries print what `make build` stamps with -ldflags -X, and fall back
// to the toolchain's VCS revision when nothing is stamped.
func TestBinariesPrintTheirVersion(t *testing.T) {
	const pkg = "github.com/outpost-dev/outpost/internal/version"
	stamped := "-ldflags=-X " + pkg + ".Version=v9.8.7 -X " + pkg + ".Revision=0123abcd"
	for _, tc := range []struct {
		name     string
		ldflags  []string
		contains []string
	}{
		{"stamped", []string{stamped}, []string{" v9.8.7 (revision 0123abcd, go"}},
		{"not stamped", nil, []string{" (revision "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir() + "/"
			args := append(append([]string{"build", "-o", dir}, tc.ldflags...), "./operator/cmd/outpost-operator", "./operator/cmd/outpost-syncer")
			build := exec.Command("go", args...)
			build.Dir = testenv.RepoRoot()
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, bin := range []string{"outpost-operator", "outpost-syncer"} {
				out, err := exec.Command(filepath.Join(dir, bin), "--version").CombinedOutput()
				if err != nil {
					t.Fatalf("%s --version: %v\n%s", bin, err, out)
				}
				got := strings.TrimSpace(string(out))
				if !strings.HasPrefix(got, bin+" ") || strings.Count(got, "\n") != 0 {
					t.Errorf("%s --version = %q, want one line starting with the binary's name", bin, got)
				}
				for _, want := range tc.contains {
					if !strings.Contains(got, want) {
						t.Errorf("%s --version = %q, want it to contain %q", bin, got, want)
					}
				}
			}
		})
	}
}
