package process

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A shell that says it started, and says it got SIGTERM before it exits.
const politeShell = `trap 'echo got TERM; exit 0' TERM; echo started; while :; do sleep 0.05; done`

func TestStopSendsSIGTERMAndReaps(t *testing.T) {
	p := StartForTest(t, "sh", "sh", "-c", politeShell)
	p.Eventually(t, 10*time.Second, "the shell started", func() error {
		if !strings.Contains(p.Log(), "started") {
			return errors.New("no 'started' in its log yet")
		}
		return nil
	})
	if err := p.Exited(); err != nil {
		t.Fatalf("before Stop: %v", err)
	}
	p.Stop()
	if p.Exited() == nil {
		t.Fatal("Stop returned with the process still running")
	}
	if !strings.Contains(p.Log(), "got TERM") {
		t.Errorf("the process did not get SIGTERM; its log:\n%s", p.Log())
	}
	p.Stop() // a second Stop (the test's cleanup) does nothing
}

func TestUntilGivesUpAtOnceWhenTheProcessExits(t *testing.T) {
	p := StartForTest(t, "false", "sh", "-c", "exit 3")
	begin := time.Now()
	err := p.Until(context.Background(), 10*time.Millisecond, time.Minute, "never ready", func() error {
		return errors.New("not ready")
	})
	if err == nil || !strings.Contains(err.Error(), "false exited: exit status 3") {
		t.Fatalf("Until = %v, want it to say the process exited with status 3", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Until took %s for a process that exited at once", d)
	}
}

func TestStartOfAMissingBinaryNamesTheFix(t *testing.T) {
	dir := t.TempDir()
	_, err := Start(filepath.Join(dir, "log"), filepath.Join(dir, "outpost-nothing"))
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("Start = %v, want an error that says to build the binary", err)
	}
}

// A Go program whose main goroutine waits in a function named for the test.
const waitingProgram = `package main

import (
	"fmt"
	"time"
)

//go:noinline
func waitsForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func main() {
	fmt.Println("started")
	waitsForever()
}
`

func TestStacksShowWhereAGoBinaryWaits(t *testing.T) {
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "main.go"), filepath.Join(dir, "waiter")
	if err := os.WriteFile(src, []byte(waitingProgram), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := StartForTest(t, "waiter", bin)
	p.Eventually(t, 10*time.Second, "the program started", func() error {
		if !strings.Contains(p.Log(), "started") {
			return errors.New("no 'started' in its log yet")
		}
		return nil
	})
	stacks := p.Stacks()
	if !strings.Contains(stacks, "main.waitsForever") {
		t.Errorf("the dump does not show main.waitsForever:\n%s", stacks)
	}
	if strings.Contains(stacks, "started") {
		t.Errorf("the dump repeats what the program logged before it:\n%s", stacks)
	}
	if p.Exited() == nil {
		t.Error("the program still runs after Stacks")
	}
	if again := p.Stacks(); again != "" {
		t.Errorf("Stacks of an exited process = %q, want nothing", again)
	}
}
