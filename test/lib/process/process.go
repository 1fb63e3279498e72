// Package process starts the binaries make run brings up (operator, CoreDNS,
// syncer) with their output in a log file.
package process

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Start runs a binary with its output in logPath and returns a function that
// stops it (SIGTERM, then SIGKILL after 10 s) and waits for it to exit. The
// binary dies with this process even when this one is killed without a
// Ctrl-C.
func Start(logPath, name string, args ...string) (stop func(), err error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w (did `make build` run?)", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}, nil
}
