package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-dev/outpost/test/manifests"
)

// outpostImages are the images `make image` writes, with the package each
// binary comes from and what proves the binary inside works.
var outpostImages = []struct {
	name, pkg string
	args      []string
	// manifest is the file whose container args must be flags the binary knows.
	manifest string
	// wantLines must each be a whole line of the output.
	wantLines []string
}{
	{name: "outpost-operator", pkg: "operator/cmd/outpost-operator", args: []string{"--help"}, manifest: "config/manager/manager.yaml"},
	{name: "outpost-syncer", pkg: "operator/cmd/outpost-syncer", args: []string{"--help"}, manifest: "config/components/datapath/syncer.yaml"},
	{name: "coredns", pkg: "plugin/coredns", args: []string{"-plugins"},
		// CoreDNS 1.15 lists plugins by bare name (older releases wrote "dns.outpost").
		wantLines: []string{"outpost", "kubernetes", "forward", "cache"}},
}

// `make image` itself, end to end: it builds each binary once (statically),
// packs it, and each tarball loads (docker load's checks), runs as non-root
// from an empty root file system, and its binary answers.
func TestMakeImage(t *testing.T) {
	for _, img := range outpostImages {
		if _, err := os.Stat(filepath.Join(root, img.pkg)); err != nil {
			missing(t, img.pkg)
		}
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	// Without -trimpath the compiled packages are the ones any other
	// CGO_ENABLED=0 build of this checkout has already put in the build cache:
	// the test pays for linking, not for compiling Kubernetes and CoreDNS again.
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "image", "BIN="+bin, "IMAGE_VERSION=v0.0.0-test",
		"IMAGE_BUILD_FLAGS=-ldflags=-s")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image took %s", time.Since(start).Round(time.Second))

	for _, want := range outpostImages {
		t.Run(want.name, func(t *testing.T) {
			tarball := filepath.Join(bin, "images", want.name+".tar")
			img, err := ReadTarball(tarball)
			if err != nil {
				t.Fatal(err)
			}
			checkConfig(t, img, want.name, "outpost-dev/"+want.name+":dev")
			if v := img.Config.Config.Labels["org.opencontainers.image.version"]; v != "v0.0.0-test" {
				t.Errorf("version label %q, want the IMAGE_VERSION given to make", v)
			}
			out := runInImage(t, img, want.args...)
			if want.manifest != "" {
				for _, flag := range manifestFlags(t, want.manifest) {
					if !strings.Contains(out, flag) {
						t.Errorf("%s passes %s, which %s %s does not list:\n%s", want.manifest, flag, want.name, strings.Join(want.args, " "), out)
					}
				}
			}
			lines := strings.Split(out, "\n")
			for i := range lines {
				lines[i] = strings.TrimSpace(lines[i])
			}
			for _, line := range want.wantLines {
				if !slices.Contains(lines, line) {
					t.Errorf("%s %s has no line %q:\n%s", want.name, strings.Join(want.args, " "), line, out)
				}
			}
			switch want.name {
			case "outpost-syncer":
				checkIptablesInImage(t, unpack(t, img))
			case "coredns":
				checkCoreDNSServes(t, img)
			}
		})
	}
}

// A ruleset with the matches and targets the syncer writes; it only ever
// exists inside the network namespace the test creates.
const syncerLikeRules = `*nat
:OUTPOST-SERVICES - [0:0]
:OUTPOST-SVC-TEST - [0:0]
:OUTPOST-SEP-TEST - [0:0]
:OUTPOST-MARK-MASQ - [0:0]
:OUTPOST-POSTROUTING - [0:0]
-A OUTPOST-SERVICES -d 198.51.100.10/32 -p tcp -m comment --comment "default/svc1:port7064" -m tcp --dport 7064 -j OUTPOST-SVC-TEST
-A OUTPOST-SERVICES -m addrtype --dst-type LOCAL -j RETURN
-A OUTPOST-SVC-TEST -m statistic --mode random --probability 0.5 -j OUTPOST-SEP-TEST
-A OUTPOST-SEP-TEST -s 203.0.113.2/32 -j OUTPOST-MARK-MASQ
-A OUTPOST-SEP-TEST -p tcp -m recent --set --name OUTPOST-SEP-TEST --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 203.0.113.2:31496
-A OUTPOST-MARK-MASQ -j MARK --or-mark 0x4000
-A OUTPOST-POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE --random-fully
COMMIT
*filter
:OUTPOST-FORWARD - [0:0]
-A OUTPOST-FORWARD -m conntrack --ctstate INVALID -j DROP
-A OUTPOST-FORWARD -d 198.51.100.11/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
`

// checkIptablesInImage runs the syncer image's own iptables-restore and
// iptables-save (chrooted into rootfs) in a network namespace the test
// creates: the image must carry a working iptables with every extension the
// syncer's rules use, since the syncer execs it.
func checkIptablesInImage(t *testing.T, rootfs string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("checking the syncer image's iptables needs root (network namespace, chroot)")
		}
		t.Log("not root: the syncer image's iptables is not checked")
		return
	}
	ns := fmt.Sprintf("outpost-image-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	inImage := func(stdin string, argv ...string) string {
		cmd := exec.CommandContext(t.Context(), "ip", append([]string{"netns", "exec", ns, "chroot", rootfs}, argv...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s in the syncer image: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return string(out)
	}
	inImage(syncerLikeRules, "/usr/sbin/iptables-restore", "--noflush")
	saved := inImage("", "/usr/sbin/iptables-save")
	for _, want := range []string{
		"-j DNAT --to-destination 203.0.113.2:31496",
		"-m statistic --mode random --probability 0.50000000000",
		"-j MASQUERADE --random-fully",
		"-m recent --set --name OUTPOST-SEP-TEST",
		"-j REJECT --reject-with icmp-port-unreachable",
	} {
		if !strings.Contains(saved, want) {
			t.Errorf("iptables-save in the syncer image lacks %q:\n%s", want, saved)
		}
	}
}

// manifestFlags returns the flag names the manifest's first container passes,
// so a renamed flag breaks this test rather than a cluster's Pods.
func manifestFlags(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := manifests.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var flags []string
	for _, u := range objs {
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if len(containers) == 0 {
			continue
		}
		args, _ := containers[0].(map[string]any)["args"].([]any)
		for _, a := range args {
			name, _, _ := strings.Cut(strings.TrimLeft(a.(string), "-"), "=")
			flags = append(flags, "-"+name)
		}
	}
	if len(flags) == 0 {
		t.Fatalf("%s passes no flags", path)
	}
	return flags
}

// missing reports a binary another part of the project has not written yet:
// a failure in CI, a skip on a developer's partial checkout.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing", what)
	}
	t.Skipf("%s is missing (would fail with CI=true)", what)
}
