package resolve

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/types"
)

// ownerSeries returns the value of o's series of c, false when it has none.
func ownerSeries(t *testing.T, c prometheus.Collector, o types.NamespacedName) (float64, bool) {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	go func() { c.Collect(ch); close(ch) }()
	var value float64
	found := false
	for m := range ch {
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range out.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == o.Namespace && labels["name"] == o.Name {
			value, found = out.GetGauge().GetValue(), true
		}
	}
	return value, found
}

func TestBackendSeriesStartFromTheRestoredConfirmationAndGoWithTheOwner(t *testing.T) {
	t.Parallel()
	// Never started: nothing is resolved, only restored.
	r, err := NewRefresher(Options{Resolver: newResolver(t, time.Second, "127.0.0.1:1")})
	if err != nil {
		t.Fatal(err)
	}
	o := types.NamespacedName{Namespace: "metrics", Name: "restored"}
	confirmed := time.Now().Add(-time.Minute).Truncate(time.Second)
	known := []Known{{Name: "a.example.test", Addr: addrs("198.51.100.50")[0], Confirmed: confirmed}}
	spec := Spec{MaxTTL: 10 * time.Minute}

	if err := r.EnsureFrom(o, []string{"a.example.test", "b.example.test"}, spec, known); err != nil {
		t.Fatal(err)
	}
	if got, ok := ownerSeries(t, lastResolution, o); !ok || got != 0 {
		t.Errorf("last resolution with a name never resolved = %v (exported %v), want 0", got, ok)
	}
	if err := r.EnsureFrom(o, []string{"a.example.test"}, spec, known); err != nil {
		t.Fatal(err)
	}
	if got, _ := ownerSeries(t, lastResolution, o); got != float64(confirmed.Unix()) {
		t.Errorf("last resolution of a restored name = %v, want its confirmation %d", got, confirmed.Unix())
	}
	if got, _ := ownerSeries(t, resolutionGrace, o); got != spec.MaxTTL.Seconds() {
		t.Errorf("grace = %v, want maxTTL %v", got, spec.MaxTTL.Seconds())
	}

	r.Forget(o)
	for _, c := range []*prometheus.GaugeVec{lastResolution, resolutionGrace} {
		if _, ok := ownerSeries(t, c, o); ok {
			t.Errorf("a series of %s outlives it", o)
		}
	}
}
