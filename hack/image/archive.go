package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// dockerManifest is one entry of manifest.json, the file `docker load` reads.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteArchive writes idx as an OCI image layout in one tar file (what
// `skopeo copy oci-archive:`, `ctr import`, `kind load image-archive` and
// `crane push` of the unpacked directory take), named tag, with every
// platform's image also listed in a manifest.json for `docker load`, tagged
// tag-ARCH: Docker's classic image store holds one platform per name. The
// file appears atomically, and only after both views read back as valid
// images, so an interrupted or broken build never leaves an archive behind.
func WriteArchive(path, tag string, idx v1.ImageIndex, mtime time.Time) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("-tag %q is not an image name like outpost-dev/coredns:dev: %w", tag, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".oci-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	// containerd (ctr import, kind) names the image after the first
	// annotation, fully qualified; skopeo's oci-archive:FILE:TAG matches the
	// second. Docker's own `docker save` writes both.
	err = lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          qualifiedName(ref),
		"org.opencontainers.image.ref.name": ref.TagStr(),
	}))
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	written, err := layout.ImageIndexFromPath(dir)
	if err == nil {
		err = validate.Index(written)
	}
	if err != nil {
		return fmt.Errorf("the OCI layout of %s does not read back as a valid index: %w", path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	tags, err := archTags(im, ref)
	if err != nil {
		return err
	}
	manifests, err := dockerManifests(idx, im, tags)
	if err != nil {
		return err
	}
	if err := lp.WriteFile("manifest.json", manifests, 0o644); err != nil {
		return err
	}

	files, err := treeFiles(dir)
	if err != nil {
		return err
	}
	for i := range files { // the umask must not change the archive's bytes
		if files[i].mode.IsDir() {
			files[i].mode = fs.ModeDir | 0o755
		} else {
			files[i].mode = 0o644
		}
	}
	tmp := path + ".tmp"
	if err := writeTarFile(tmp, files, mtime); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Read each platform back the way `docker load` would: every digest,
	// size and diff_id checked.
	for _, t := range tags {
		img, err := tarball.ImageFromPath(tmp, &t)
		if err == nil {
			err = validate.Image(img)
		}
		if err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("%s does not load as %s: %w", path, t, err)
		}
	}
	return os.Rename(tmp, path)
}

// dockerManifests is manifest.json for idx: each platform's image tagged
// tag-ARCH, pointing at the OCI layout's blobs (docker load reads gzip layers).
func dockerManifests(idx v1.ImageIndex, im *v1.IndexManifest, tags []name.Tag) ([]byte, error) {
	var entries []dockerManifest
	for i, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		config, err := img.ConfigName()
		if err != nil {
			return nil, err
		}
		layers, err := img.Layers()
		if err != nil {
			return nil, err
		}
		e := dockerManifest{Config: blobPath(config), RepoTags: []string{tags[i].String()}}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return nil, err
			}
			e.Layers = append(e.Layers, blobPath(d))
		}
		entries = append(entries, e)
	}
	return json.Marshal(entries)
}

// archTags names each platform of im for Docker: ref's tag with -ARCH
// appended, in the index's order.
func archTags(im *v1.IndexManifest, ref name.Tag) ([]name.Tag, error) {
	repo := strings.TrimSuffix(ref.String(), ":"+ref.TagStr())
	var tags []name.Tag
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			return nil, fmt.Errorf("index entry %s has no platform", desc.Digest)
		}
		t, err := name.NewTag(repo + ":" + ref.TagStr() + "-" + desc.Platform.Architecture)
		if err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, nil
}

// qualifiedName is ref the way containerd stores names: Docker Hub spelt
// docker.io, official images under library/.
func qualifiedName(ref name.Tag) string {
	registry := ref.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return registry + "/" + ref.RepositoryStr() + ":" + ref.TagStr()
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

func writeTarFile(path string, files []file, mtime time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeTar(f, files, mtime); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
