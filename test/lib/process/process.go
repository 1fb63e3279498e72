// Package process starts and stops the binaries the suites and `make run`
// bring up (CoreDNS, the operator, the syncer), the one way all of them do
// it:
//
//   - output goes to a log file, which a test shows (its last lines) when it
//     fails, and `make run` names for the user to read;
//   - the binary gets SIGKILL when the process that started it dies, even by
//     SIGKILL or a test timeout, so nothing outlives a killed run;
//   - Stop sends SIGTERM, the signal a kubelet sends, so the binary runs its
//     shutdown path (CoreDNS writes its snapshot); after StopGrace it sends
//     SIGKILL, and it returns once the process is reaped;
//   - Until and Eventually wait for readiness and give up at once, saying
//     how, if the process exits meanwhile.
package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-dev/outpost/test/lib/poll"
)

// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
const StopGrace = 15 * time.Second

// logTailLines is how much of a log a failed test shows.
const logTailLines = 150

// Process is a running (or exited) binary.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// exited is closed once the process is reaped.
	exited chan struct{}
}

// Start runs argv[0] with the arguments argv[1:], its standard output and
// error going to a new file at logPath.
func Start(logPath string, argv ...string) (*Process, error) {
	return start("", logPath, nil, argv)
}

// start runs argv in dir with env added to this process's environment.
func start(dir, logPath string, env, argv []string) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("process: no binary to start")
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("process: log of %s: %w", argv[0], err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig fires when the thread that forked the binary ends. Go ends
	// a thread only with its process, or when a goroutine locked to it
	// (runtime.LockOSThread, as in setns.Do) returns still locked: do not
	// call Start from such a goroutine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("start %s: %w (is it built? `make build` builds bin/)", argv[0], err)
		}
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p := &Process{name: filepath.Base(argv[0]), cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // the exit status is in cmd.ProcessState
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// StartForTest is Start for tests: the binary runs in a directory of its
// own, which also holds its log (name.log); it is stopped when tb ends, and
// if tb failed the last lines of its log are in the test output. A binary
// that cannot start fails tb.
func StartForTest(tb testing.TB, name string, argv ...string) *Process {
	tb.Helper()
	return StartForTestEnv(tb, name, nil, argv...)
}

// StartForTestEnv is StartForTest with env (KEY=value) added to the test's
// environment, e.g. a PATH that puts a fault-injecting wrapper first.
func StartForTestEnv(tb testing.TB, name string, env []string, argv ...string) *Process {
	tb.Helper()
	dir := tb.TempDir()
	p, err := start(dir, filepath.Join(dir, name+".log"), env, argv)
	if err != nil {
		tb.Fatal(err)
	}
	p.name = name
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("%s log (last %d lines):\n%s", name, logTailLines, tail(p.Log(), logTailLines))
		}
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is nil while the process runs and, once it has exited, an error
// saying how ("coredns exited: exit status 1").
func (p *Process) Exited() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v", p.name, p.cmd.ProcessState)
	default:
		return nil
	}
}

// Log is what the process has written so far.
func (p *Process) Log() string {
	out, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", p.logPath, err)
	}
	return string(out)
}

// Stop sends SIGTERM, then SIGKILL if the process still runs after
// StopGrace, and returns once it is reaped. Stopping an exited process does
// nothing, so a test may stop a process early and leave the cleanup to run.
func (p *Process) Stop() { p.StopWith(syscall.SIGTERM) }

// StopWith is Stop with another first signal: SIGKILL for a crash, as a
// fault test wants, or SIGINT for a Ctrl-C.
func (p *Process) StopWith(sig syscall.Signal) {
	if p.Exited() != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(StopGrace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Stacks ends a Go binary with SIGABRT, on which the Go runtime prints the
// stack of every goroutine before it exits, and returns that dump: for a
// test whose server stopped answering, it shows where the handlers wait.
// (SIGQUIT would do too, but CoreDNS traps it to quit quietly.) It returns
// nothing if the process had already exited.
func (p *Process) Stacks() string {
	if p.Exited() != nil {
		return ""
	}
	before := len(p.Log())
	p.StopWith(syscall.SIGABRT)
	log := p.Log()
	if len(log) < before {
		return log
	}
	return log[before:]
}

// Until waits for ready as poll.Until does, and gives up at once if the
// process exits meanwhile, with an error saying how.
func (p *Process) Until(ctx context.Context, interval, timeout time.Duration, what string, ready func() error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := poll.Until(ctx, interval, timeout, what, ready)
	if exit := p.Exited(); err != nil && exit != nil {
		return fmt.Errorf("%s: %w", what, exit)
	}
	return err
}

// Eventually is Until for tests: it polls every poll.Interval and fails tb.
func (p *Process) Eventually(tb testing.TB, timeout time.Duration, what string, ready func() error) {
	tb.Helper()
	if err := p.Until(context.Background(), poll.Interval, timeout, what, ready); err != nil {
		tb.Fatal(err)
	}
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
