// Command image packs one statically linked binary into an OCI image and
// writes it as a tarball that `docker load` (and `kind load image-archive`,
// `ctr import`, `crane push`) accepts, without a Docker daemon.
//
// It lives in its own module so that go-containerregistry and its
// dependencies stay out of Outpost's go.mod. `make image` runs it once per
// binary:
//
//	image -binary bin/images/rootfs/coredns -tag outpost-dev/coredns:dev \
//	      -out bin/images/coredns.tar -description "..." -version v0.1.0
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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
	fs.StringVar(&s.Binary, "binary", "", "statically linked binary to pack (required)")
	fs.StringVar(&s.Title, "title", "", "image title and the binary's name in the image (default: the binary's file name)")
	fs.StringVar(&s.Description, "description", "", "org.opencontainers.image.description")
	fs.StringVar(&s.Version, "version", "dev", "org.opencontainers.image.version")
	fs.StringVar(&s.Revision, "revision", "", "org.opencontainers.image.revision (commit)")
	fs.StringVar(&s.Source, "source", "https://github.com/outpost-dev/outpost", "org.opencontainers.image.source")
	fs.StringVar(&s.Arch, "arch", runtime.GOARCH, "architecture the binary was built for")
	fs.StringVar(&s.Base, "base", "", "base image: an image tarball path or a registry reference (default: empty, FROM scratch)")
	fs.StringVar(&s.CACerts, "ca-certs", "", "CA bundle to install as /etc/ssl/certs/ca-certificates.crt (only without -base)")
	fs.Func("add-dir", "directory tree to add as a layer below the binary, as if it were / (repeatable)", func(dir string) error {
		s.Dirs = append(s.Dirs, dir)
		return nil
	})
	fs.StringVar(&out, "out", "", "tarball to write (required)")
	fs.StringVar(&tag, "tag", "", "tag recorded in the tarball, e.g. outpost-dev/coredns:dev (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.Binary == "" || out == "" || tag == "" {
		fs.Usage()
		return fmt.Errorf("-binary, -out and -tag are required")
	}
	if s.Title == "" {
		s.Title = filepath.Base(s.Binary)
	}
	// Reproducible by default: the same inputs give the same image digest.
	s.Created = time.Unix(0, 0).UTC()
	if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		sec, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
		}
		s.Created = time.Unix(sec, 0).UTC()
	}
	img, err := Build(s)
	if err != nil {
		return err
	}
	if err := WriteTarball(out, tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image: wrote %s (%s, %s)\n", out, tag, digest)
	return nil
}
