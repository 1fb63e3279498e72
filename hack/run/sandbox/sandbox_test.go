package sandbox

import (
	"slices"
	"testing"
)

func TestLeftoversAreSandboxesOfGoneProcesses(t *testing.T) {
	list := `outpost-run-node-100 (id: 3)
outpost-run-backend-100 (id: 4)
outpost-run-node-200 (id: 5)
outpost-run-broken
e2e-node-100 (id: 1)
`
	running := func(pid int) bool { return pid == 200 }
	got := leftovers(list, running)
	want := []string{"outpost-run-node-100", "outpost-run-backend-100", "outpost-run-broken"}
	if !slices.Equal(got, want) {
		t.Fatalf("leftovers = %v, want %v", got, want)
	}
}

func TestGreetingNamesTheBackend(t *testing.T) {
	got := Backend{IP: "192.168.1.2", Port: "31496"}.Greeting()
	if want := "hello from 192.168.1.2:31496 (an outside machine)"; got != want {
		t.Fatalf("Greeting = %q, want %q", got, want)
	}
}
