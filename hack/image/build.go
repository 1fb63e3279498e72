package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// NonRoot is the user and group the image runs as, distroless' "nonroot".
const NonRoot = 65532

// Spec describes one image: a single binary and its metadata.
type Spec struct {
	Binary      string // path of the statically linked binary to pack
	Title       string // image title; the binary is installed as /<Title>
	Description string
	Version     string
	Revision    string
	Source      string
	Arch        string   // GOARCH the binary was built for
	Base        string   // "" (empty base), an image tarball path, or a registry reference
	CACerts     string   // CA bundle for the empty base; "" for none
	Dirs        []string // trees added as layers (each as if it were /), e.g. the syncer's iptables
	Created     time.Time
}

// Build assembles the image: the base (empty unless Spec.Base), a layer with
// the few files a Go program expects from a root file system (only on the
// empty base), and a layer with the binary, run as 65532:65532.
func Build(s Spec) (v1.Image, error) {
	binary, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	if err := checkBinary(s.Binary, s.Arch, s.Base == ""); err != nil {
		return nil, err
	}
	base, err := loadBase(s.Base, s.Arch)
	if err != nil {
		return nil, err
	}
	var adds []mutate.Addendum
	if s.Base == "" {
		files, err := rootFS(s.CACerts)
		if err != nil {
			return nil, err
		}
		layer, err := tarLayer(files, s.Created)
		if err != nil {
			return nil, fmt.Errorf("root file system layer: %w", err)
		}
		adds = append(adds, addendum(layer, "outpost: /etc/passwd, /etc/group, /tmp, /home/nonroot, CA certificates", s.Created))
	}
	for _, dir := range s.Dirs {
		files, err := treeFiles(dir)
		if err != nil {
			return nil, err
		}
		layer, err := tarLayer(files, s.Created)
		if err != nil {
			return nil, fmt.Errorf("layer from %s: %w", dir, err)
		}
		adds = append(adds, addendum(layer, "outpost: files from "+filepath.Base(dir), s.Created))
	}
	entry := "/" + s.Title
	layer, err := tarLayer([]file{{path: entry, mode: 0o755, data: binary}}, s.Created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	adds = append(adds, addendum(layer, "outpost: "+entry, s.Created))

	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", s.Arch
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cf.Config.Entrypoint = []string{entry}
	cf.Config.Cmd = nil
	cf.Config.WorkingDir = "/"
	if len(cf.Config.Env) == 0 {
		cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	labels := map[string]string{
		"org.opencontainers.image.title":       s.Title,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.source":      s.Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     s.Created.Format(time.RFC3339),
	}
	maps.DeleteFunc(labels, func(_, v string) bool { return v == "" })
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	maps.Copy(cf.Config.Labels, labels) // ours win over the base's
	return mutate.ConfigFile(img, cf)
}

// WriteTarball writes img as a `docker save`-style tarball tagged tag,
// atomically, so an interrupted build never leaves a truncated image behind.
func WriteTarball(path, tag string, img v1.Image) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Read the tarball back and check every digest, size and diff_id, as a
	// registry or `docker load` would, before it takes the final name.
	written, err := tarball.ImageFromPath(tmp, &ref)
	if err == nil {
		err = validate.Image(written)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%s does not read back as a valid image: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// checkBinary refuses what could not run in the image: a binary for another
// architecture, or, on the empty base, one that needs a dynamic loader.
func checkBinary(path, arch string, static bool) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux (ELF) binary: %w", path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM,
		"386": elf.EM_386, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV}[arch]
	if want != 0 && f.Machine != want {
		return fmt.Errorf("%s is built for %s, not %s", path, f.Machine, arch)
	}
	if static {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				return fmt.Errorf("%s is dynamically linked and cannot run on an empty base: build it with CGO_ENABLED=0", path)
			}
		}
	}
	return nil
}

func loadBase(ref, arch string) (v1.Image, error) {
	if ref == "" {
		img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
	}
	if _, err := os.Stat(ref); err == nil {
		img, err := tarball.ImageFromPath(ref, nil)
		if err != nil {
			return nil, fmt.Errorf("base image tarball %s: %w", ref, err)
		}
		return img, nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("base image %q is neither a file nor a reference: %w", ref, err)
	}
	img, err := remote.Image(r, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, fmt.Errorf("pull base image %s: %w", ref, err)
	}
	return img, nil
}

// file is one entry of a layer: a directory (mode.IsDir()), a symbolic link
// (mode&fs.ModeSymlink, target in link) or a regular file with data.
type file struct {
	path     string
	mode     fs.FileMode
	uid, gid int
	data     []byte
	link     string
}

// treeFiles reads the tree under dir as layer entries rooted at /, owned by
// root, keeping symbolic links as links, in lexical order (reproducible).
func treeFiles(dir string) ([]file, error) {
	var files []file
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := file{path: "/" + filepath.ToSlash(rel), mode: info.Mode()}
		switch {
		case d.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			if f.link, err = os.Readlink(path); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if f.data, err = os.ReadFile(path); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: only directories, files and symbolic links can go into a layer", path)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", dir, err)
	}
	return files, nil
}

// rootFS is what the empty base lacks and Go programs look for: user and
// group names for 65532 (os/user, logs), a writable /tmp and home, and the CA
// bundle that TLS (HTTPS health checks, the API server) verifies against.
func rootFS(caCerts string) ([]file, error) {
	files := []file{
		{path: "/etc", mode: fs.ModeDir | 0o755},
		{path: "/etc/passwd", mode: 0o644, data: fmt.Appendf(nil,
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot)},
		{path: "/etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", NonRoot)},
		{path: "/home", mode: fs.ModeDir | 0o755},
		{path: "/home/nonroot", mode: fs.ModeDir | 0o700, uid: NonRoot, gid: NonRoot},
		{path: "/tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
	}
	if caCerts != "" {
		pem, err := os.ReadFile(caCerts)
		if err != nil {
			return nil, fmt.Errorf("CA certificates: %w", err)
		}
		files = append(files,
			file{path: "/etc/ssl", mode: fs.ModeDir | 0o755},
			file{path: "/etc/ssl/certs", mode: fs.ModeDir | 0o755},
			file{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: pem})
	}
	return files, nil
}

// tarLayer builds a gzip-compressed layer from files with fixed times and
// owners, so that equal inputs give equal digests.
func tarLayer(files []file, mtime time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.path[1:], // layer paths are relative to the root
			Mode:    int64(f.mode.Perm()),
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case f.mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		case f.mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.link, 0o777
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

func addendum(layer v1.Layer, createdBy string, created time.Time) mutate.Addendum {
	return mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: createdBy, Created: v1.Time{Time: created}}}
}
