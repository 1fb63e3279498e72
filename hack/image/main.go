// Command image packs a statically linked binary, built once per
// architecture, into a multi-architecture OCI image (an image index with a
// linux/ARCH image each) and writes it as one tar file, without a Docker
// daemon: an OCI image layout that skopeo, ctr, kind and crane take, which
// `docker load` takes too (one image per architecture, tagged TAG-ARCH).
//
// It lives in its own module so that go-containerregistry and its
// dependencies stay out of Outpost's go.mod. `make image` runs it once per
// binary:
//
//	image -binary amd64=bin/images/linux-amd64/coredns -binary arm64=bin/images/linux-arm64/coredns \
//	      -tag outpost-dev/coredns:dev -out bin/images/coredns.tar -description "..." -version v0.1.0
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	var s Spec
	var out, tag string
	var platforms []Platform
	platform := func(arch string) *Platform {
		i := slices.IndexFunc(platforms, func(p Platform) bool { return p.Arch == arch })
		if i < 0 {
			return nil
		}
		return &platforms[i]
	}
	fs.Func("binary", "ARCH=PATH: the statically linked binary built for GOARCH=ARCH (repeatable, one per architecture; required)", func(v string) error {
		arch, path, err := archValue("binary", v)
		if err != nil {
			return err
		}
		if platform(arch) != nil {
			return fmt.Errorf("-binary %s given twice", arch)
		}
		platforms = append(platforms, Platform{Arch: arch, Binary: path})
		return nil
	})
	var dirs []string
	fs.Func("add-dir", "ARCH=DIR: a directory tree to add to ARCH's image as a layer below the binary, as if it were / (repeatable)", func(v string) error {
		dirs = append(dirs, v) // applied once every -binary is known
		return nil
	})
	fs.StringVar(&s.Title, "title", "", "image title and the binary's name in the image (default: the binaries' file name)")
	fs.StringVar(&s.Description, "description", "", "org.opencontainers.image.description")
	fs.StringVar(&s.Version, "version", "dev", "org.opencontainers.image.version")
	fs.StringVar(&s.Revision, "revision", "", "org.opencontainers.image.revision (commit)")
	fs.StringVar(&s.Source, "source", "https://github.com/outpost-dev/outpost", "org.opencontainers.image.source")
	fs.StringVar(&s.CACerts, "ca-certs", "", "CA bundle to install as /etc/ssl/certs/ca-certificates.crt")
	fs.StringVar(&out, "out", "", "archive to write (required)")
	fs.StringVar(&tag, "tag", "", "image name recorded in the archive, e.g. outpost-dev/coredns:dev (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(platforms) == 0 || out == "" || tag == "" {
		fs.Usage()
		return fmt.Errorf("-binary, -out and -tag are required")
	}
	for _, v := range dirs {
		arch, dir, err := archValue("add-dir", v)
		if err != nil {
			return err
		}
		p := platform(arch)
		if p == nil {
			return fmt.Errorf("-add-dir %s: no -binary %s=... to add it to", v, arch)
		}
		p.Dirs = append(p.Dirs, dir)
	}
	if s.Title == "" {
		s.Title = filepath.Base(platforms[0].Binary)
		for _, p := range platforms[1:] {
			if filepath.Base(p.Binary) != s.Title {
				return fmt.Errorf("-binary %s and %s have different names: name the binary in the image with -title", platforms[0].Binary, p.Binary)
			}
		}
	}
	// Reproducible by default: the same inputs give the same image digests.
	s.Created = time.Unix(0, 0).UTC()
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds: %w", epoch, err)
		}
		s.Created = time.Unix(sec, 0).UTC()
	}
	idx, err := BuildIndex(s, platforms)
	if err != nil {
		return err
	}
	if err := WriteArchive(out, tag, idx, s.Created); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	archs := make([]string, len(platforms))
	for i, p := range platforms {
		archs[i] = "linux/" + p.Arch
	}
	fmt.Printf("image: wrote %s (%s, %s, index %s)\n", out, tag, strings.Join(archs, " "), digest)
	return nil
}

// archValue splits a flag's ARCH=PATH value.
func archValue(flag, v string) (arch, path string, err error) {
	arch, path, ok := strings.Cut(v, "=")
	if !ok || arch == "" || path == "" {
		return "", "", fmt.Errorf("-%s %q: want ARCH=PATH, e.g. -%s arm64=bin/images/linux-arm64/coredns", flag, v, flag)
	}
	return arch, path, nil
}
