package manifests

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// sameObjects fails unless got (from gotFrom) holds the same objects as want
// (from wantFrom), field for field, whatever their order.
func sameObjects(t *testing.T, gotFrom string, got []*unstructured.Unstructured, wantFrom string, want []*unstructured.Unstructured) {
	t.Helper()
	key := func(u *unstructured.Unstructured) string { return u.GetAPIVersion() + " " + Ref(u) }
	index := map[string]*unstructured.Unstructured{}
	for _, u := range got {
		index[key(u)] = u
	}
	for _, w := range want {
		g, ok := index[key(w)]
		if !ok {
			t.Errorf("%s lacks %s, which %s has", gotFrom, key(w), wantFrom)
			continue
		}
		delete(index, key(w))
		if diff := cmp.Diff(w.Object, g.Object); diff != "" {
			t.Errorf("%s differs (-%s +%s):\n%s", key(w), wantFrom, gotFrom, diff)
		}
	}
	for k := range index {
		t.Errorf("%s has %s, which %s lacks", gotFrom, k, wantFrom)
	}
}
