package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-dev/outpost/hack/run/sandbox"
	"github.com/outpost-dev/outpost/test/lib/testenv"
)

// binDir holds outpost-run and the binaries it starts, built once.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "outpost-run-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testenv.Build(dir+"/", "./hack/run", "./plugin/coredns",
		"./operator/cmd/outpost-operator", "./operator/cmd/outpost-syncer"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// go build names the binary after its directory: hack/run is "run".
	if err := os.Rename(filepath.Join(dir, "run"), filepath.Join(dir, "outpost-run")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// TestRunAsRootPrintsAWorkingCurlAndLeavesNothingBehind runs `make run`'s
// binary as a user would: it must print a curl through a ClusterIP that
// answers from the sandbox's backend, and after Ctrl-C no namespace or
// process of it may remain. A leftover namespace of a killed run must be
// gone once it has started.
func TestRunAsRootPrintsAWorkingCurlAndLeavesNothingBehind(t *testing.T) {
	requireSandbox(t)
	stale := sandbox.Prefix + "node-99999999" // no such pid: a killed run's
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", stale, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", stale).Run() })

	cmd := exec.Command(filepath.Join(binDir, "outpost-run"), "--bin", binDir)
	cmd.Env = withoutKubeconfig(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once outpost-run has exited with waitErr.
	exited := make(chan struct{})
	var waitErr error
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines {
		}
		<-exited
		sandbox.RemoveLeftovers() // the namespaces of a failed run, after the checks
	})

	var output []string
	curl := ""
	timeout := time.After(3 * time.Minute)
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-exited
				t.Fatalf("outpost-run exited before it was ready: %v\nstdout:\n%s\nstderr:\n%s", waitErr, strings.Join(output, "\n"), stderr.String())
			}
			output = append(output, line)
			if strings.Contains(line, "ip netns exec") && strings.Contains(line, "curl") {
				curl = strings.TrimSpace(strings.SplitN(line, "#", 2)[0])
			}
			if strings.Contains(line, "Press Ctrl-C") {
				break wait
			}
		case <-timeout:
			t.Fatalf("outpost-run not ready within 3 minutes:\n%s\nstderr:\n%s", strings.Join(output, "\n"), stderr.String())
		}
	}
	t.Logf("outpost-run printed:\n%s", strings.Join(output, "\n"))

	if curl == "" {
		t.Fatal("outpost-run printed no curl command")
	}
	node := fmt.Sprintf("%snode-%d", sandbox.Prefix, cmd.Process.Pid)
	if !strings.Contains(curl, node) {
		t.Errorf("curl command %q does not run in the node namespace %s", curl, node)
	}
	if namespaces(t, stale) {
		t.Errorf("the leftover namespace %s of a killed run is still there", stale)
	}
	// We are root already: run the printed command without sudo.
	got, err := exec.Command("sh", "-c", strings.TrimPrefix(curl, "sudo ")).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", curl, err, got)
	}
	if want := "hello from 192.168.1.2:31496 (an outside machine)\n"; string(got) != want {
		t.Fatalf("%s answered %q, want %q", curl, got, want)
	}

	// Every component's metrics command shows its series.
	var metricsCommands []string
	for _, line := range output {
		if i := strings.Index(line, "curl -s http://"); i >= 0 && strings.Contains(line, "/metrics | grep") {
			metricsCommands = append(metricsCommands, line[i:])
		}
	}
	if len(metricsCommands) != 3 {
		t.Errorf("outpost-run printed %d metrics commands, want one for each of the operator, CoreDNS and the syncer", len(metricsCommands))
	}
	for _, c := range metricsCommands {
		if got, err := exec.Command("sh", "-c", c).CombinedOutput(); err != nil || len(got) == 0 {
			t.Errorf("%s: %v: %q", c, err, got)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain the goodbye lines so Wait can finish
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("outpost-run after Ctrl-C: %v\nstderr:\n%s", waitErr, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("outpost-run still running a minute after Ctrl-C")
	}
	if namespaces(t, fmt.Sprintf("-%d", cmd.Process.Pid)) {
		t.Errorf("a namespace of outpost-run (pid %d) remains after Ctrl-C", cmd.Process.Pid)
	}
	if procs := processesMentioning(t, binDir); len(procs) > 0 {
		t.Errorf("processes started by outpost-run remain after Ctrl-C:\n%s", strings.Join(procs, "\n"))
	}
}

// requireSandbox fails (CI=true) or skips unless the sandbox can run.
func requireSandbox(t *testing.T) {
	t.Helper()
	why := sandbox.Skip()
	if _, err := exec.LookPath("curl"); err != nil {
		why = strings.TrimSpace(why + " curl")
	}
	if why == "" {
		return
	}
	msg := "the sandbox test " + why + " (.ci/run installs iptables, iproute2 and curl)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run this test")
	}
	t.Skip(msg)
}

func withoutKubeconfig(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

// namespaces reports whether a sandbox namespace whose name contains
// part exists.
func namespaces(t *testing.T, part string) bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], sandbox.Prefix) && strings.Contains(f[0], part) {
			return true
		}
	}
	return false
}

// processesMentioning lists the command lines of running processes that
// contain s: every binary outpost-run starts is under binDir.
func processesMentioning(t *testing.T, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		if line := strings.ReplaceAll(string(raw), "\x00", " "); strings.Contains(line, s) {
			out = append(out, e.Name()+": "+line)
		}
	}
	return out
}
