// Package images reads the image tarballs `make image` writes, the way
// `docker load` does, using only the standard library: a reader independent
// of the writer (go-containerregistry, in hack/image) is what makes the tests
// a check of the format rather than of a round trip.
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

// Image is one image read from a `docker save`-format tarball.
type Image struct {
	RepoTags []string
	Config   Config
	// Layers are the uncompressed layer tarballs, base first.
	Layers [][]byte
}

// manifestEntry is one element of the tarball's manifest.json, the file
// `docker load` reads first.
type manifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ReadTarball reads the single image in path and verifies what docker load
// verifies: the config blob matches its digest and each layer matches its
// diff_id in the config.
func ReadTarball(path string) (*Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blobs := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if blobs[hdr.Name], err = io.ReadAll(tr); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, hdr.Name, err)
		}
	}
	var manifest []manifestEntry
	if err := json.Unmarshal(blobs["manifest.json"], &manifest); err != nil {
		return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
	}
	if len(manifest) != 1 {
		return nil, fmt.Errorf("%s: manifest.json lists %d images, want 1", path, len(manifest))
	}
	m := manifest[0]
	raw, ok := blobs[m.Config]
	if !ok {
		return nil, fmt.Errorf("%s: config %s missing", path, m.Config)
	}
	if got := digest(raw); !strings.Contains(m.Config, strings.TrimPrefix(got, "sha256:")) {
		return nil, fmt.Errorf("%s: config blob %s has digest %s", path, m.Config, got)
	}
	img := &Image{RepoTags: m.RepoTags}
	if err := json.Unmarshal(raw, &img.Config); err != nil {
		return nil, fmt.Errorf("%s: config: %w", path, err)
	}
	if len(m.Layers) != len(img.Config.RootFS.DiffIDs) {
		return nil, fmt.Errorf("%s: %d layers but %d diff_ids", path, len(m.Layers), len(img.Config.RootFS.DiffIDs))
	}
	for i, name := range m.Layers {
		blob, ok := blobs[name]
		if !ok {
			return nil, fmt.Errorf("%s: layer %s missing", path, name)
		}
		layer, err := decompress(blob)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", path, name, err)
		}
		if got, want := digest(layer), img.Config.RootFS.DiffIDs[i]; got != want {
			return nil, fmt.Errorf("%s: layer %s has diff_id %s, config says %s", path, name, got, want)
		}
		img.Layers = append(img.Layers, layer)
	}
	return img, nil
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
