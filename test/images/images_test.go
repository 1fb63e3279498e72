package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-dev/outpost/test/lib/testenv"
)

var (
	root = testenv.RepoRoot()
	// builder is hack/image's command, built once for the package.
	builder string
)

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime; without a logger it prints a stack trace.
	ctrllog.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "outpost-images-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builder = filepath.Join(dir, "image-builder")
	code := 1
	if out, err := goCmd(context.Background(), nil, "build", "-C", filepath.Join(root, "hack", "image"), "-o", builder, "."); err != nil {
		fmt.Fprintf(os.Stderr, "build hack/image: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// The architectures every test image is built for: the host's, whose
// binaries the tests run, and one that differs from it.
var testArchs = func() []string {
	if runtime.GOARCH == "arm64" {
		return []string{"arm64", "amd64"}
	}
	return []string{runtime.GOARCH, "arm64"}
}()

// The builder on a tiny static binary: everything but the three real
// binaries, so it is tested even where they do not build.
func TestBuilderPacksAStaticBinary(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-tag", "outpost-dev/hello:test", "-out", filepath.Join(dir, "hello.tar"),
		"-description", "test image", "-version", "v1.2.3", "-revision", "abc123", "-ca-certs", writeFile(t, dir, "ca.crt", "PEM")}
	for _, arch := range testArchs {
		args = append(args, "-binary", arch+"="+buildHello(t, dir, arch))
	}
	pack(t, args...)

	archive, err := ReadArchive(filepath.Join(dir, "hello.tar"))
	if err != nil {
		t.Fatal(err)
	}
	checkArchive(t, archive, "outpost-dev/hello:test", testArchs)
	for _, arch := range testArchs {
		img := archive.Images[arch]
		checkConfig(t, img, "hello", arch)
		if n := checkELFMachines(t, img, arch); n != 1 {
			t.Errorf("linux/%s image has %d ELF files, want the one binary", arch, n)
		}
		for label, want := range map[string]string{
			"org.opencontainers.image.title":       "hello",
			"org.opencontainers.image.description": "test image",
			"org.opencontainers.image.version":     "v1.2.3",
			"org.opencontainers.image.revision":    "abc123",
			"org.opencontainers.image.source":      "https://github.com/outpost-dev/outpost",
		} {
			if got := img.Config.Config.Labels[label]; got != want {
				t.Errorf("linux/%s: label %s = %q, want %q", arch, label, got, want)
			}
		}
		files, err := img.Files()
		if err != nil {
			t.Fatal(err)
		}
		for path, want := range map[string]struct {
			mode     os.FileMode
			uid, gid int
		}{
			"/hello":                             {0o755, 0, 0},
			"/etc/passwd":                        {0o644, 0, 0},
			"/etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0},
			"/tmp/":                              {os.ModeDir | os.ModeSticky | 0o777, 0, 0},
			"/home/nonroot/":                     {os.ModeDir | 0o700, 65532, 65532},
		} {
			hdr, ok := files[path]
			if !ok {
				t.Errorf("linux/%s image lacks %s", arch, path)
				continue
			}
			if got := hdr.FileInfo().Mode(); got != want.mode || hdr.Uid != want.uid || hdr.Gid != want.gid {
				t.Errorf("linux/%s: %s: mode %v owner %d:%d, want %v %d:%d", arch, path, got, hdr.Uid, hdr.Gid, want.mode, want.uid, want.gid)
			}
		}
	}

	// Inside the image the binary finds its user, its working directory and a
	// writable /tmp, with nothing from the host.
	out := runInImage(t, archive.Images[runtime.GOARCH], "a", "b")
	if want := `uid=65532 gid=65532 user=nonroot cwd=/ tmp=writable args=["a" "b"]`; strings.TrimSpace(out) != want && !hostRun(t) {
		t.Errorf("inside the image the binary reports\n%s\nwant\n%s", out, want)
	}
}

// The same inputs give the same bytes, so a rebuild does not change the
// image digests and registries dedupe the shared layers.
func TestBuilderIsReproducible(t *testing.T) {
	dir := t.TempDir()
	var binaries []string
	for _, arch := range testArchs {
		binaries = append(binaries, "-binary", arch+"="+buildHello(t, dir, arch))
	}
	var archives [][]byte
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("hello-%d.tar", i))
		pack(t, append([]string{"-tag", "outpost-dev/hello:test", "-out", out}, binaries...)...)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, b)
	}
	if !bytes.Equal(archives[0], archives[1]) {
		t.Error("two builds of the same binaries differ")
	}
}

// -add-dir ARCH=DIR adds a tree as a layer to that architecture's image only:
// files keep their modes, symbolic links stay links.
func TestBuilderAddsADirectoryTree(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "usr", "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tree, "usr", "sbin"), "tool", "#!/bin/true\n")
	if err := os.Symlink("tool", filepath.Join(tree, "usr", "sbin", "tool-alias")); err != nil {
		t.Fatal(err)
	}
	withTree, without := testArchs[1], testArchs[0]
	out := filepath.Join(dir, "tree.tar")
	pack(t, "-tag", "outpost-dev/tree:test", "-out", out,
		"-binary", without+"="+buildHello(t, dir, without), "-binary", withTree+"="+buildHello(t, dir, withTree),
		"-add-dir", withTree+"="+tree)
	archive, err := ReadArchive(out)
	if err != nil {
		t.Fatal(err)
	}
	files, err := archive.Images[withTree].Files()
	if err != nil {
		t.Fatal(err)
	}
	if hdr := files["/usr/sbin/tool"]; hdr == nil || hdr.FileInfo().Mode() != 0o755 || hdr.Uid != 0 {
		t.Errorf("/usr/sbin/tool: %+v, want a root-owned 0755 file", hdr)
	}
	if hdr := files["/usr/sbin/tool-alias"]; hdr == nil || hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "tool" {
		t.Errorf("/usr/sbin/tool-alias: %+v, want a symbolic link to tool", hdr)
	}
	if _, ok := files["/hello"]; !ok {
		t.Error("the binary is missing next to the tree")
	}
	if files, err = archive.Images[without].Files(); err != nil {
		t.Fatal(err)
	}
	if _, ok := files["/usr/sbin/tool"]; ok {
		t.Errorf("the linux/%s image has the tree given for %s only", without, withTree)
	}
}

// What could not run, or could not be packed as asked, is refused with a
// message that says how to fix it, instead of an image that fails at the
// first pull.
func TestBuilderRefusesWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	dynamic := "/bin/true"
	if f, err := elf.Open(dynamic); err != nil || !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Fatalf("need a dynamically linked %s on the host to test with (%v)", dynamic, err)
	}
	host, other := testArchs[0], testArchs[1]
	hello := buildHello(t, dir, host)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-binary", host + "=" + dynamic}, "dynamically linked and cannot run on an empty base: build it with CGO_ENABLED=0"},
		{[]string{"-binary", host + "=" + writeFile(t, dir, "script.sh", "#!/bin/sh\n")}, "is not a Linux (ELF) binary"},
		{[]string{"-binary", other + "=" + hello}, "not " + other + ": build it with GOARCH=" + other},
		{[]string{"-binary", hello}, "want ARCH=PATH"},
		{[]string{"-binary", host + "=" + hello, "-add-dir", other + "=" + dir}, "no -binary " + other + "=... to add it to"},
	} {
		args := append([]string{"-tag", "outpost-dev/x:test", "-out", filepath.Join(dir, "x.tar")}, tc.args...)
		out, err := run(t.Context(), builder, args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("image %s: err %v, output %q; want an error saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
			t.Errorf("image %s left an archive behind", strings.Join(tc.args, " "))
		}
	}
}

// buildHello builds testdata/hello as a static binary for arch, once per
// dir and arch.
func buildHello(t *testing.T, dir, arch string) string {
	t.Helper()
	out := filepath.Join(dir, arch, "hello")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	if b, err := goCmd(t.Context(), []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch}, "build", "-o", out, "./testdata/hello"); err != nil {
		t.Fatalf("build testdata/hello for %s: %v\n%s", arch, err, b)
	}
	return out
}

func pack(t *testing.T, args ...string) {
	t.Helper()
	if out, err := run(t.Context(), builder, args...); err != nil {
		t.Fatalf("image %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// checkArchive checks the archive holds one image per architecture in archs,
// named tag for containerd and tag-ARCH for docker load.
func checkArchive(t *testing.T, a *Archive, tag string, archs []string) {
	t.Helper()
	if !slices.Equal(a.Archs, archs) {
		t.Errorf("image index platforms %v, want linux/%v", a.Archs, archs)
	}
	if got, want := a.Annotations["io.containerd.image.name"], "docker.io/"+tag; got != want {
		t.Errorf("io.containerd.image.name %q, want %q (what ctr import and kind name it)", got, want)
	}
	for arch, img := range a.Images {
		if want := []string{tag + "-" + arch}; !slices.Equal(img.RepoTags, want) {
			t.Errorf("linux/%s: manifest.json tags %v, want %v (what docker load names it)", arch, img.RepoTags, want)
		}
	}
}

// elfMachines are the ELF machines of the architectures the tests build for.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkELFMachines checks that every ELF file in img (binaries, shared
// libraries, the loader) is built for arch, and returns how many there are.
func checkELFMachines(t *testing.T, img *Image, arch string) int {
	t.Helper()
	want, ok := elfMachines[arch]
	if !ok {
		t.Fatalf("no ELF machine known for %s", arch)
	}
	n := 0
	err := img.walk(func(hdr *tar.Header, r io.Reader) error {
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		data, err := io.ReadAll(r)
		if err != nil || !bytes.HasPrefix(data, []byte(elf.ELFMAG)) {
			return err
		}
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return err
		}
		if f.Machine != want {
			t.Errorf("linux/%s image: /%s is built for %s", arch, hdr.Name, f.Machine)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkConfig checks what every Outpost image must have.
func checkConfig(t *testing.T, img *Image, binary, arch string) {
	t.Helper()
	if img == nil {
		t.Fatalf("no linux/%s image", arch)
	}
	c := img.Config
	if c.OS != "linux" || c.Architecture != arch {
		t.Errorf("the linux/%s image's config says platform %s/%s", arch, c.OS, c.Architecture)
	}
	if c.Config.User != "65532:65532" {
		t.Errorf("user %q, want the non-root 65532:65532", c.Config.User)
	}
	if !slices.Equal(c.Config.Entrypoint, []string{"/" + binary}) || len(c.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/%s] and no cmd", c.Config.Entrypoint, c.Config.Cmd, binary)
	}
	if c.Config.WorkingDir != "/" {
		t.Errorf("working dir %q, want /", c.Config.WorkingDir)
	}
	for _, label := range []string{"title", "description", "version", "source"} {
		if c.Config.Labels["org.opencontainers.image."+label] == "" {
			t.Errorf("label org.opencontainers.image.%s is missing", label)
		}
	}
}

// runInImage unpacks img and runs its entrypoint with args inside it (chroot,
// image user and working directory). That needs root: without it the test
// fails in CI and, elsewhere, runs the unpacked binary on the host.
func runInImage(t *testing.T, img *Image, args ...string) string {
	t.Helper()
	rootfs := unpack(t, img)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if hostRun(t) {
		cmd = exec.CommandContext(ctx, filepath.Join(rootfs, img.Config.Config.Entrypoint[0]), args...)
	} else {
		var err error
		if cmd, err = img.Command(ctx, rootfs, args...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q in the image: %v\n%s", img.Config.Config.Entrypoint[0], args, err, out)
	}
	return string(out)
}

// unpack writes img's file system into a new directory and returns it.
func unpack(t *testing.T, img *Image) string {
	t.Helper()
	rootfs := t.TempDir()
	if err := os.Chmod(rootfs, 0o755); err != nil { // the image's "/" must be readable by its user
		t.Fatal(err)
	}
	if err := img.Unpack(rootfs); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	return rootfs
}

// hostRun tells whether binaries run on the host instead of inside their
// image because the test is not root.
func hostRun(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		return false
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("running a binary inside its image needs root (chroot); CI must run as root")
	}
	t.Log("not root: running the unpacked binary on the host instead of inside its image")
	return true
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func goCmd(ctx context.Context, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root + "/test/images"
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
