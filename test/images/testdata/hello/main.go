// Command hello reports, from inside an image's root file system, what the
// image test checks: who it runs as, where, and whether /tmp is writable.
package main

import (
	"fmt"
	"os"
	"os/user"
)

func main() {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	wd, _ := os.Getwd()
	tmp := "writable"
	if f, err := os.CreateTemp("", "probe"); err != nil {
		tmp = err.Error()
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	fmt.Printf("uid=%d gid=%d user=%s cwd=%s tmp=%s args=%q\n", os.Getuid(), os.Getgid(), name, wd, tmp, os.Args[1:])
}
