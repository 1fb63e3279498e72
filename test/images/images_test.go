package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// The builder on a tiny static binary: everything but the three real
// binaries, so it is tested even where they do not build.
func TestBuilderPacksAStaticBinary(t *testing.T) {
	dir := t.TempDir()
	hello := buildHello(t, dir)
	tarball := filepath.Join(dir, "hello.tar")
	pack(t, "-binary", hello, "-tag", "outpost-dev/hello:test", "-out", tarball,
		"-description", "test image", "-version", "v1.2.3", "-revision", "abc123", "-ca-certs", writeFile(t, dir, "ca.crt", "PEM"))

	img, err := ReadTarball(tarball)
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, img, "hello", "outpost-dev/hello:test")
	for label, want := range map[string]string{
		"org.opencontainers.image.title":       "hello",
		"org.opencontainers.image.description": "test image",
		"org.opencontainers.image.version":     "v1.2.3",
		"org.opencontainers.image.revision":    "abc123",
		"org.opencontainers.image.source":      "https://github.com/outpost-dev/outpost",
	} {
		if got := img.Config.Config.Labels[label]; got != want {
			t.Errorf("label %s = %q, want %q", label, got, want)
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
			t.Errorf("image lacks %s", path)
			continue
		}
		if got := hdr.FileInfo().Mode(); got != want.mode || hdr.Uid != want.uid || hdr.Gid != want.gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", path, got, hdr.Uid, hdr.Gid, want.mode, want.uid, want.gid)
		}
	}

	// Inside the image the binary finds its user, its working directory and a
	// writable /tmp, with nothing from the host.
	out := runInImage(t, img, "a", "b")
	if want := `uid=65532 gid=65532 user=nonroot cwd=/ tmp=writable args=["a" "b"]`; strings.TrimSpace(out) != want && !hostRun(t) {
		t.Errorf("inside the image the binary reports\n%s\nwant\n%s", out, want)
	}
}

// The same inputs give the same bytes, so a rebuild does not change the
// image digest and registries dedupe the shared layers.
func TestBuilderIsReproducible(t *testing.T) {
	dir := t.TempDir()
	hello := buildHello(t, dir)
	var tarballs [][]byte
	for i := range 2 {
		out := filepath.Join(dir, fmt.Sprintf("hello-%d.tar", i))
		pack(t, "-binary", hello, "-tag", "outpost-dev/hello:test", "-out", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		tarballs = append(tarballs, b)
	}
	if !bytes.Equal(tarballs[0], tarballs[1]) {
		t.Error("two builds of the same binary differ")
	}
}

// With -base (here an image tarball; a registry reference goes through the
// same code) the binary is added on top and the base's files stay.
func TestBuilderOnABase(t *testing.T) {
	dir := t.TempDir()
	hello := buildHello(t, dir)
	base := filepath.Join(dir, "base.tar")
	pack(t, "-binary", hello, "-tag", "outpost-dev/base:test", "-out", base)
	second := filepath.Join(dir, "hello2")
	if err := os.Link(hello, second); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "layered.tar")
	pack(t, "-binary", second, "-tag", "outpost-dev/layered:test", "-out", tarball, "-base", base, "-description", "layered")

	baseImg, err := ReadTarball(base)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ReadTarball(tarball)
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, img, "hello2", "outpost-dev/layered:test")
	if got, want := len(img.Layers), len(baseImg.Layers)+1; got != want {
		t.Errorf("%d layers, want the base's %d plus one", got, len(baseImg.Layers))
	}
	files, err := img.Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/hello", "/hello2", "/etc/passwd"} {
		if _, ok := files[path]; !ok {
			t.Errorf("layered image lacks %s", path)
		}
	}
	if out := runInImage(t, img); !strings.Contains(out, "uid=65532") && !hostRun(t) {
		t.Errorf("layered image's entrypoint reports %q", out)
	}
}

// -add-dir adds a tree as a layer: files keep their modes, symbolic links
// stay links.
func TestBuilderAddsADirectoryTree(t *testing.T) {
	dir := t.TempDir()
	hello := buildHello(t, dir)
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "usr", "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tree, "usr", "sbin"), "tool", "#!/bin/true\n")
	if err := os.Symlink("tool", filepath.Join(tree, "usr", "sbin", "tool-alias")); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "tree.tar")
	pack(t, "-binary", hello, "-tag", "outpost-dev/tree:test", "-out", tarball, "-add-dir", tree)
	img, err := ReadTarball(tarball)
	if err != nil {
		t.Fatal(err)
	}
	files, err := img.Files()
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
}

// A binary that cannot run on an empty base is refused with a message that
// says how to fix it, instead of an image that fails at the first pull.
func TestBuilderRefusesWhatCannotRun(t *testing.T) {
	dir := t.TempDir()
	dynamic := "/bin/true"
	if f, err := elf.Open(dynamic); err != nil || !slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Fatalf("need a dynamically linked %s on the host to test with (%v)", dynamic, err)
	}
	for _, tc := range []struct{ binary, want string }{
		{dynamic, "dynamically linked and cannot run on an empty base: build it with CGO_ENABLED=0"},
		{writeFile(t, dir, "script.sh", "#!/bin/sh\n"), "is not a Linux (ELF) binary"},
	} {
		out, err := run(t.Context(), builder, "-binary", tc.binary, "-tag", "outpost-dev/x:test", "-out", filepath.Join(dir, "x.tar"))
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("packing %s: err %v, output %q; want an error saying %q", tc.binary, err, out, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
			t.Errorf("packing %s left a tarball behind", tc.binary)
		}
	}
}

// buildHello builds testdata/hello as a static binary.
func buildHello(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "hello")
	if b, err := goCmd(t.Context(), []string{"CGO_ENABLED=0"}, "build", "-o", out, "./testdata/hello"); err != nil {
		t.Fatalf("build testdata/hello: %v\n%s", err, b)
	}
	return out
}

func pack(t *testing.T, args ...string) {
	t.Helper()
	if out, err := run(t.Context(), builder, args...); err != nil {
		t.Fatalf("image %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// checkConfig checks what every Outpost image must have.
func checkConfig(t *testing.T, img *Image, binary, tag string) {
	t.Helper()
	c := img.Config
	if !slices.Equal(img.RepoTags, []string{tag}) {
		t.Errorf("tags %v, want [%s] (what docker load will name it)", img.RepoTags, tag)
	}
	if c.OS != "linux" || c.Architecture == "" {
		t.Errorf("platform %s/%s", c.OS, c.Architecture)
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
