package images

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// imageArchs are the architectures `make image` builds for by default.
var imageArchs = []string{"amd64", "arm64"}

// `make image` itself, end to end: it builds each binary once per
// architecture (statically) and packs them into one multi-architecture
// archive per binary; each platform's image reads back as containerd and
// docker load read it, holds only files of its architecture, and the host's
// runs as non-root from an empty root file system, its binary answering.
func TestMakeImage(t *testing.T) {
	for _, img := range outpostImages {
		if _, err := os.Stat(filepath.Join(root, img.pkg)); err != nil {
			missing(t, img.pkg)
		}
	}
	if !slices.Contains(imageArchs, runtime.GOARCH) {
		t.Fatalf("make image builds for %v, not for this %s machine, whose binaries the test runs", imageArchs, runtime.GOARCH)
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
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
			archive, err := ReadArchive(filepath.Join(bin, "images", want.name+".tar"))
			if err != nil {
				t.Fatal(err)
			}
			checkArchive(t, archive, "outpost-dev/"+want.name+":dev", imageArchs)
			for _, arch := range imageArchs {
				img := archive.Images[arch]
				checkConfig(t, img, want.name, arch)
				if v := img.Config.Config.Labels["org.opencontainers.image.version"]; v != "v0.0.0-test" {
					t.Errorf("linux/%s: version label %q, want the IMAGE_VERSION given to make", arch, v)
				}
				checkELFMachines(t, img, arch)
				if want.name == "outpost-syncer" {
					checkIptablesNames(t, img, arch)
				}
			}

			img := archive.Images[runtime.GOARCH]
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
				rootfs := unpack(t, img)
				for _, backend := range []string{"nft", "legacy"} {
					t.Run(backend, func(t *testing.T) { checkIptablesBackend(t, rootfs, backend) })
				}
			case "coredns":
				checkCoreDNSServes(t, img)
			}
		})
	}
}

// checkIptablesNames checks that the syncer image has both iptables backends
// under the names the syncer runs, and the plain names on nf_tables.
func checkIptablesNames(t *testing.T, img *Image, arch string) {
	t.Helper()
	files, err := img.Files()
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	for _, multi := range []string{"nft", "legacy"} {
		for _, cmd := range []string{"iptables", "ip6tables"} {
			for _, suffix := range []string{"", "-save", "-restore"} {
				links[cmd+"-"+multi+suffix] = "xtables-" + multi + "-multi"
			}
		}
	}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		for _, suffix := range []string{"", "-save", "-restore"} {
			links[cmd+suffix] = "xtables-nft-multi"
		}
	}
	for name, target := range links {
		hdr := files["/usr/sbin/"+name]
		if hdr == nil || hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != target {
			t.Errorf("linux/%s syncer image: /usr/sbin/%s is %+v, want a link to %s", arch, name, hdr, target)
		}
		if hdr := files["/usr/sbin/"+target]; hdr == nil || hdr.Typeflag != tar.TypeReg || hdr.Mode&0o111 == 0 {
			t.Errorf("linux/%s syncer image: /usr/sbin/%s is %+v, want an executable", arch, target, hdr)
		}
	}
}

// Rulesets with the matches and targets the syncer writes; they only ever
// exist inside the network namespaces the test creates.
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

const syncerLikeRules6 = `*nat
:OUTPOST-SERVICES - [0:0]
-A OUTPOST-SERVICES -d 2001:db8::10/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:db8::2]:8080
COMMIT
*filter
:OUTPOST-FORWARD - [0:0]
-A OUTPOST-FORWARD -d 2001:db8::11/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable
COMMIT
`

// checkIptablesBackend runs the syncer image's own iptables-BACKEND-restore
// and ip6tables-BACKEND-restore (chrooted into rootfs) in a network namespace
// of its own, and reads the result with the host's iptables-BACKEND-save:
// the rules must be there, with every extension the syncer uses, and only
// there, not in the other backend, or the image would program a backend the
// node's kube-proxy and CNI plugin do not read.
func checkIptablesBackend(t *testing.T, rootfs, backend string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("checking the syncer image's iptables needs root (network namespace, chroot)")
		}
		t.Skip("not root: the syncer image's iptables is not checked")
	}
	other := map[string]string{"nft": "legacy", "legacy": "nft"}[backend]
	for _, tool := range []string{"iptables-" + backend + "-save", "iptables-" + other + "-save", "ip6tables-" + backend + "-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the host's %s reads what the image wrote: install Debian's iptables package (%v)", tool, err)
		}
	}
	ns := fmt.Sprintf("outpost-image-%d-%s", os.Getpid(), backend)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	inNetns := func(stdin string, argv ...string) string {
		cmd := exec.CommandContext(t.Context(), "ip", append([]string{"netns", "exec", ns}, argv...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		return string(out)
	}
	inNetns(syncerLikeRules, "chroot", rootfs, "/usr/sbin/iptables-"+backend+"-restore", "--noflush")
	inNetns(syncerLikeRules6, "chroot", rootfs, "/usr/sbin/ip6tables-"+backend+"-restore", "--noflush")

	saved := inNetns("", "iptables-"+backend+"-save")
	for _, want := range []string{
		"-j DNAT --to-destination 203.0.113.2:31496",
		"-m statistic --mode random --probability 0.50000000000",
		"-j MASQUERADE --random-fully",
		"-m recent --set --name OUTPOST-SEP-TEST",
		"-j REJECT --reject-with icmp-port-unreachable",
	} {
		if !strings.Contains(saved, want) {
			t.Errorf("the host's iptables-%s-save lacks %q after the image's iptables-%s-restore:\n%s", backend, want, backend, saved)
		}
	}
	saved6 := inNetns("", "ip6tables-"+backend+"-save")
	for _, want := range []string{"-j DNAT --to-destination [2001:db8::2]:8080", "-j REJECT --reject-with icmp6-port-unreachable"} {
		if !strings.Contains(saved6, want) {
			t.Errorf("the host's ip6tables-%s-save lacks %q after the image's ip6tables-%s-restore:\n%s", backend, want, backend, saved6)
		}
	}
	if saved := inNetns("", "iptables-"+other+"-save"); strings.Contains(saved, "OUTPOST-") {
		t.Errorf("the image's iptables-%s-restore wrote into the %s backend:\n%s", backend, other, saved)
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
