package main

import (
	"slices"
	"testing"
)

func TestWithOutpostGoesBeforeKubernetes(t *testing.T) {
	got := withOutpost([]string{"hosts", "k8s_external", "kubernetes", "file"})
	want := []string{"hosts", "k8s_external", "outpost", "kubernetes", "file"}
	if !slices.Equal(got, want) {
		t.Fatalf("withOutpost = %v, want %v", got, want)
	}
	if again := withOutpost(got); !slices.Equal(again, want) {
		t.Fatalf("withOutpost is not idempotent: %v", again)
	}
}
