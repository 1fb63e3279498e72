package manifests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// `make install-yaml` is the single-file install of a release: it must be
// config/default, object for object.
func TestInstallYAMLIsTheDefaultTree(t *testing.T) {
	dist := t.TempDir()
	make := exec.Command("make", "install-yaml", "DIST="+dist)
	make.Dir = root
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make install-yaml: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dist, "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Decode(f)
	if err != nil {
		t.Fatalf("dist/install.yaml: %v", err)
	}
	sameObjects(t, "dist/install.yaml", got, defaultTree, trees[defaultTree])
}
