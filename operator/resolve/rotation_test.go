package resolve

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// rotating answers with 3 of 8 addresses, as a server that shuffles its
// records and truncates the answer does.
func rotating(random *rand.Rand) outcome {
	all := make([]netip.Addr, 8)
	for i := range all {
		all[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
	}
	random.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	return outcome{answer: Answer{Addrs: sortedAddrs(recentlySeen(nil, all[:3], time.Time{}, 0)), TTL: 5 * time.Second}}
}

func TestRotationWindowStopsTheChurnOfRotatingAnswers(t *testing.T) {
	for _, tc := range []struct {
		window      time.Duration
		maxChanges  int
		minChanges  int
		description string
	}{
		{0, 720, 500, "without a window nearly every answer changes the set"},
		{time.Minute, 60, 1, "a window of 12 answers leaves an address out now and then"},
		{2 * time.Minute, 1, 0, "with a window of 24 answers the set stays at all 8"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			spec, err := Spec{MinTTL: time.Second, MaxTTL: 30 * time.Minute, RotationWindow: tc.window}.normalize()
			if err != nil {
				t.Fatal(err)
			}
			random := rand.New(rand.NewPCG(1, 2))
			now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
			var fs familyState
			changes := 0
			// Two minutes to see every address, then one hour of
			// answers every 5 s.
			for i := range 24 + 720 {
				before := fmt.Sprint(fs.addrs)
				fs, _ = step(fs, rotating(random), spec, now)
				if fmt.Sprint(fs.addrs) != before && i >= 24 {
					changes++
				}
				now = now.Add(5 * time.Second)
			}
			t.Logf("window %s: the published set changed %d times in an hour of answers", tc.window, changes)
			if changes < tc.minChanges || changes > tc.maxChanges {
				t.Errorf("%d changes, want %d to %d", changes, tc.minChanges, tc.maxChanges)
			}
		})
	}
}

func TestRotationWindowDropsAnAddressGoneForTheWindow(t *testing.T) {
	spec, _ := Spec{MinTTL: time.Second, MaxTTL: time.Hour, RotationWindow: time.Minute}.normalize()
	a, b := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fs, _ := step(familyState{}, outcome{answer: Answer{Addrs: []netip.Addr{a, b}, TTL: 5 * time.Second}}, spec, now)
	onlyA := outcome{answer: Answer{Addrs: []netip.Addr{a}, TTL: 5 * time.Second}}
	for _, tc := range []struct {
		after time.Duration
		want  string
	}{
		{59 * time.Second, "[198.51.100.1 198.51.100.2]"},
		{time.Minute, "[198.51.100.1]"},
	} {
		got, _ := step(fs, onlyA, spec, now.Add(tc.after))
		if fmt.Sprint(got.addrs) != tc.want {
			t.Errorf("%s after the last answer with both: %v, want %s", tc.after, got.addrs, tc.want)
		}
		if tc.after < time.Minute && !got.seen[b].Equal(now) {
			t.Errorf("kept %s last seen %v, want %v (its status lastResolved)", b, got.seen[b], now)
		}
	}
}

func TestRotationWindowIsBoundedByMaxTTL(t *testing.T) {
	_, err := Spec{MaxTTL: time.Minute, RotationWindow: 2 * time.Minute}.normalize()
	if err == nil || err.Error() != "resolution.rotationWindow: 2m0s must be between 0 and maxTTL 1m0s" {
		t.Errorf("rotationWindow > maxTTL: %v", err)
	}
}
