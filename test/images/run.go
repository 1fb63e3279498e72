package images

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Command returns a command that runs the image's entrypoint with args the
// way a container runtime would as far as files and identity go: chrooted
// into rootfs (the unpacked image), as the image's user and group, in its
// working directory, with its environment and nothing from the host. It
// needs root (chroot); the caller decides what to do without it.
func (img *Image) Command(ctx context.Context, rootfs string, args ...string) (*exec.Cmd, error) {
	c := img.Config.Config
	if len(c.Entrypoint) == 0 {
		return nil, fmt.Errorf("image has no entrypoint")
	}
	uid, gid, err := parseUser(c.User)
	if err != nil {
		return nil, err
	}
	argv := append(append(append([]string{}, c.Entrypoint...), c.Cmd...), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.WorkingDir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = c.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     rootfs,
		Credential: &syscall.Credential{Uid: uid, Gid: gid},
	}
	return cmd, nil
}

// parseUser reads a numeric "uid[:gid]" user; a name would need the image's
// /etc/passwd, and images run by Kubernetes under runAsNonRoot must be numeric.
func parseUser(user string) (uid, gid uint32, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	uid64, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("image user %q is not numeric: %w", user, err)
	}
	gid64 := uid64
	if hasGroup {
		if gid64, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("image group in %q is not numeric: %w", user, err)
		}
	}
	return uint32(uid64), uint32(gid64), nil
}
