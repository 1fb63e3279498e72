package syncer

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func TestLocalhostNodePortsSetsRouteLocalnetOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir()
	sysctl := filepath.Join(dir, "route_localnet")
	if err := os.WriteFile(sysctl, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !localhostNodePorts("", sysctl, logr.Discard()) {
		t.Fatal("localhost node ports off although the sysctl could be written")
	}
	if b, _ := os.ReadFile(sysctl); string(b) != "1" {
		t.Errorf("route_localnet holds %q, want 1", b)
	}

	// Already on: not written again (a read-only /proc/sys is fine then).
	old := time.Unix(1, 0)
	if err := os.Chtimes(sysctl, old, old); err != nil {
		t.Fatal(err)
	}
	if !localhostNodePorts("", sysctl, logr.Discard()) {
		t.Fatal("localhost node ports off although route_localnet is 1")
	}
	if fi, _ := os.Stat(sysctl); !fi.ModTime().Equal(old) {
		t.Errorf("route_localnet rewritten although it was already 1")
	}

	// Cannot be set: the rules leave 127.0.0.0/8 out instead of failing.
	if localhostNodePorts("", filepath.Join(dir, "missing", "route_localnet"), logr.Discard()) {
		t.Error("localhost node ports on although route_localnet cannot be set")
	}
}
