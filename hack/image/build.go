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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// NonRoot is the user and group the image runs as, distroless' "nonroot".
const NonRoot = 65532

// Spec is what the images of every platform share.
type Spec struct {
	Title       string // image title; the binary is installed as /<Title>
	Description string
	Version     string
	Revision    string
	Source      string
	CACerts     string // CA bundle to install; "" for none
	Created     time.Time
}

// Platform is what differs between the architectures of one image.
type Platform struct {
	Arch   string   // GOARCH the binary was built for
	Binary string   // statically linked binary to pack
	Dirs   []string // trees added as layers (each as if it were /), e.g. the syncer's iptables
}

// BuildIndex builds one image per platform and lists each in an OCI image
// index under its platform, so that a runtime pulls the one for its node.
func BuildIndex(s Spec, platforms []Platform) (v1.ImageIndex, error) {
	if len(platforms) == 0 {
		return nil, fmt.Errorf("no platform to build")
	}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img, err := Build(s, p)
		if err != nil {
			return nil, fmt.Errorf("linux/%s: %w", p.Arch, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: containerImage{img}, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: p.Arch},
		}})
	}
	return mutate.AppendManifests(empty.Index, adds...), nil
}

// containerImage is an image listed in an index as a container image, not
// as an artifact: go-containerregistry would otherwise give its descriptor an
// artifactType (the config's media type), which the OCI image spec reserves
// for artifacts, and which tools that list artifacts apart then misreport.
type containerImage struct{ v1.Image }

func (containerImage) ArtifactType() (string, error) { return "", nil }

// Build assembles one platform's image on an empty base: a layer with the
// few files a Go program expects from a root file system, one layer per
// directory tree, and a layer with the binary, run as 65532:65532.
func Build(s Spec, p Platform) (v1.Image, error) {
	binary, err := os.ReadFile(p.Binary)
	if err != nil {
		return nil, fmt.Errorf("read binary: %w", err)
	}
	if err := checkBinary(p.Binary, p.Arch); err != nil {
		return nil, err
	}
	files, err := rootFS(s.CACerts)
	if err != nil {
		return nil, err
	}
	layer, err := tarLayer(files, s.Created)
	if err != nil {
		return nil, fmt.Errorf("root file system layer: %w", err)
	}
	adds := []mutate.Addendum{addendum(layer, "outpost: /etc/passwd, /etc/group, /tmp, /home/nonroot, CA certificates", s.Created)}
	for _, dir := range p.Dirs {
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
	layer, err = tarLayer([]file{{path: entry, mode: 0o755, data: binary}}, s.Created)
	if err != nil {
		return nil, fmt.Errorf("binary layer: %w", err)
	}
	adds = append(adds, addendum(layer, "outpost: "+entry, s.Created))

	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", p.Arch
	cf.Created = v1.Time{Time: s.Created}
	cf.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cf.Config.Entrypoint = []string{entry}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       s.Title,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.source":      s.Source,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     s.Created.Format(time.RFC3339),
	}
	maps.DeleteFunc(cf.Config.Labels, func(_, v string) bool { return v == "" })
	return mutate.ConfigFile(img, cf)
}

// elfMachines maps GOARCH to the ELF machine its binaries carry.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM,
	"386": elf.EM_386, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV}

// checkBinary refuses what could not run in the image: a binary for another
// architecture, or one that needs a dynamic loader the empty base lacks.
func checkBinary(path, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("architecture %q is not one of linux/amd64, arm64, arm, 386, ppc64le, s390x, riscv64", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux (ELF) binary: %w", path, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("%s is built for %s, not %s: build it with GOARCH=%s", path, f.Machine, arch, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked and cannot run on an empty base: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
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
	if err := writeTar(&buf, files, mtime); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// writeTar writes files as a tar stream, paths relative to the root, every
// entry with the time mtime: the same files give the same bytes.
func writeTar(w io.Writer, files []file, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		hdr := &tar.Header{
			Name:    f.path[1:],
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
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addendum(layer v1.Layer, createdBy string, created time.Time) mutate.Addendum {
	return mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: createdBy, Created: v1.Time{Time: created}}}
}
