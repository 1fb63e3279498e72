// Package images reads the archives `make image` writes the way the tools
// that take them do, using only the standard library: a reader independent of
// the writer (go-containerregistry, in hack/image) is what makes the tests a
// check of the format rather than of a round trip.
package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Config is the part of an OCI image configuration the tests look at.
type Config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		User       string            `json:"User"`
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		Env        []string          `json:"Env"`
		Labels     map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// Archive is one OCI image layout in a tar file, as skopeo's oci-archive: and
// ctr import read it: index.json names one image index, which lists one
// image per platform.
type Archive struct {
	// Annotations of the index in index.json; containerd names the image
	// after io.containerd.image.name.
	Annotations map[string]string
	// Archs are the index's platforms' architectures, in its order.
	Archs  []string
	Images map[string]*Image // by architecture
}

// Image is one platform's image.
type Image struct {
	// RepoTags are what `docker load` names it (manifest.json).
	RepoTags []string
	Config   Config
	// Layers are the uncompressed layer tarballs, base first.
	Layers [][]byte
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Digest       string            `json:"digest"`
	Size         int               `json:"size"`
	Annotations  map[string]string `json:"annotations"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

const (
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
)

// ReadArchive reads path and verifies what a registry, ctr import and docker
// load verify: every blob matches its digest and size, each layer its diff_id
// in the config, and manifest.json's images are the index's.
func ReadArchive(path string) (*Archive, error) {
	files, err := readTar(path)
	if err != nil {
		return nil, err
	}
	a, err := readLayout(files)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := readDockerManifest(files, a); err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
	}
	return a, nil
}

func readTar(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if files[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, hdr.Name, err)
		}
	}
}

func readLayout(files map[string][]byte) (*Archive, error) {
	var layout struct{ ImageLayoutVersion string }
	if err := json.Unmarshal(files["oci-layout"], &layout); err != nil || layout.ImageLayoutVersion != "1.0.0" {
		return nil, fmt.Errorf("oci-layout %q is not an OCI image layout 1.0.0 marker (%v)", files["oci-layout"], err)
	}
	var top struct{ Manifests []descriptor }
	if err := json.Unmarshal(files["index.json"], &top); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].MediaType != ociIndex {
		return nil, fmt.Errorf("index.json lists %+v, want one image index", top.Manifests)
	}
	var index struct{ Manifests []descriptor }
	if err := readJSON(files, top.Manifests[0], &index); err != nil {
		return nil, err
	}
	a := &Archive{Annotations: top.Manifests[0].Annotations, Images: map[string]*Image{}}
	for _, d := range index.Manifests {
		if d.MediaType != ociManifest || d.Platform == nil || d.Platform.OS != "linux" {
			return nil, fmt.Errorf("image index entry %s: media type %s, platform %+v; want a linux image manifest", d.Digest, d.MediaType, d.Platform)
		}
		if d.ArtifactType != "" {
			return nil, fmt.Errorf("image index entry linux/%s has artifactType %s: tools would list the image as an artifact", d.Platform.Architecture, d.ArtifactType)
		}
		if a.Images[d.Platform.Architecture] != nil {
			return nil, fmt.Errorf("image index lists linux/%s twice", d.Platform.Architecture)
		}
		img, err := readImage(files, d)
		if err != nil {
			return nil, fmt.Errorf("linux/%s: %w", d.Platform.Architecture, err)
		}
		a.Archs = append(a.Archs, d.Platform.Architecture)
		a.Images[d.Platform.Architecture] = img
	}
	return a, nil
}

// manifest is an OCI image manifest.
type manifest struct {
	Config descriptor
	Layers []descriptor
}

func readImage(files map[string][]byte, d descriptor) (*Image, error) {
	var m manifest
	if err := readJSON(files, d, &m); err != nil {
		return nil, err
	}
	img := &Image{}
	if err := readJSON(files, m.Config, &img.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(m.Layers) != len(img.Config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%d layers but %d diff_ids", len(m.Layers), len(img.Config.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		blob, err := readBlob(files, l)
		if err != nil {
			return nil, err
		}
		layer, err := decompress(blob)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if got, want := digest(layer), img.Config.RootFS.DiffIDs[i]; got != want {
			return nil, fmt.Errorf("layer %s has diff_id %s, config says %s", l.Digest, got, want)
		}
		img.Layers = append(img.Layers, layer)
	}
	return img, nil
}

// readDockerManifest checks that manifest.json lists each of a's images, by
// the same config and layer blobs, and records the tags docker load gives them.
func readDockerManifest(files map[string][]byte, a *Archive) error {
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil {
		return err
	}
	if len(entries) != len(a.Archs) {
		return fmt.Errorf("%d images, the index %d", len(entries), len(a.Archs))
	}
	for _, e := range entries {
		raw, ok := files[e.Config]
		if !ok {
			return fmt.Errorf("config %s is not in the archive", e.Config)
		}
		var c Config
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("config %s: %w", e.Config, err)
		}
		img := a.Images[c.Architecture]
		if img == nil || !slices.Equal(c.RootFS.DiffIDs, img.Config.RootFS.DiffIDs) || len(e.Layers) != len(img.Layers) {
			return fmt.Errorf("config %s (%s) is not an image of the index", e.Config, c.Architecture)
		}
		for i, l := range e.Layers {
			layer, err := decompress(files[l])
			if err != nil || !bytes.Equal(layer, img.Layers[i]) {
				return fmt.Errorf("layer %s of %s is not the index's layer %d (%v)", l, c.Architecture, i, err)
			}
		}
		img.RepoTags = e.RepoTags
	}
	return nil
}

// readBlob returns the blob d points at, checked against its digest and size.
func readBlob(files map[string][]byte, d descriptor) ([]byte, error) {
	algorithm, hex, _ := strings.Cut(d.Digest, ":")
	blob, ok := files[filepath.Join("blobs", algorithm, hex)]
	if !ok {
		return nil, fmt.Errorf("blob %s is not in the archive", d.Digest)
	}
	if got := digest(blob); got != d.Digest || len(blob) != d.Size {
		return nil, fmt.Errorf("blob %s has digest %s and size %d, descriptor says size %d", d.Digest, got, len(blob), d.Size)
	}
	return blob, nil
}

func readJSON(files map[string][]byte, d descriptor, v any) error {
	blob, err := readBlob(files, d)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(blob, v); err != nil {
		return fmt.Errorf("%s: %w", d.Digest, err)
	}
	return nil
}

// Files lists the regular files of the image's file system (the last layer
// wins) with their modes and owners.
func (img *Image) Files() (map[string]*tar.Header, error) {
	files := map[string]*tar.Header{}
	err := img.walk(func(hdr *tar.Header, _ io.Reader) error {
		files["/"+strings.TrimPrefix(hdr.Name, "./")] = hdr
		return nil
	})
	return files, err
}

// Unpack writes the image's file system into dir with the modes and owners of
// the layers (owners only when running as root), as a container runtime would.
func (img *Image) Unpack(dir string) error {
	return img.walk(func(hdr *tar.Header, r io.Reader) error {
		target := filepath.Join(dir, filepath.Clean("/"+hdr.Name))
		if base := filepath.Base(target); strings.HasPrefix(base, ".wh.") {
			return os.RemoveAll(filepath.Join(filepath.Dir(target), strings.TrimPrefix(base, ".wh.")))
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, r); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			return os.Symlink(hdr.Linkname, target)
		default:
			return nil
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(target, hdr.Uid, hdr.Gid); err != nil {
				return err
			}
		}
		return os.Chmod(target, hdr.FileInfo().Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid))
	})
}

func (img *Image) walk(fn func(*tar.Header, io.Reader) error) error {
	for _, layer := range img.Layers {
		tr := tar.NewReader(bytes.NewReader(layer))
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if err := fn(hdr, tr); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
	}
	return nil
}

func decompress(blob []byte) ([]byte, error) {
	if len(blob) < 2 || blob[0] != 0x1f || blob[1] != 0x8b {
		return blob, nil // an uncompressed layer
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
