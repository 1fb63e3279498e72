package controller_test

import (
	"fmt"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-dev/outpost/api/v1alpha1"
)

// sliceGeneration is the generation of the backend's IPv4 EndpointSlice,
// which the API server bumps on every change of its endpoints.
func sliceGeneration(ns, name string) int64 {
	GinkgoHelper()
	slices := slicesOf(ns, name)
	Expect(slices).To(HaveLen(1))
	return slices[0].Generation
}

var _ = Describe("A name whose answers rotate", func() {
	It("writes its EndpointSlice only when the set changes with a rotationWindow", func() {
		ns := newNamespace()
		name := ns + ".rotating.example.com"
		var all []string
		for i := 1; i <= 8; i++ {
			all = append(all, fmt.Sprintf("198.51.100.%d", i))
		}
		// The server answers 3 of the 8 addresses, a new choice every
		// half second, so that nearly every query gets another subset.
		rotate := func() {
			rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			dns.SetA(name, 5, all[:3]...)
		}
		rotate()
		stop := make(chan struct{})
		DeferCleanup(func() { close(stop) })
		go func() {
			ticker := time.NewTicker(500 * time.Millisecond)
			defer ticker.Stop()
			for {
				select {
				case <-stop:
					return
				case <-ticker.C:
					rotate()
				}
			}
		}()

		spec := func(window *metav1.Duration) v1alpha1.ExternalBackendSpec {
			res := resolution("5s", "30m")
			res.RotationWindow = window
			return v1alpha1.ExternalBackendSpec{Addresses: []string{name}, Ports: tcp(443), Resolution: res}
		}
		churning := backend(ns, "churning", spec(nil))
		steady := backend(ns, "steady", spec(&metav1.Duration{Duration: 2 * time.Minute}))
		Expect(k8s.Create(ctx, churning)).To(Succeed())
		Expect(k8s.Create(ctx, steady)).To(Succeed())
		By("waiting until the steady backend has seen all 8 addresses")
		Eventually(func() int { return len(addressesOf(slicesOf(ns, "steady"))) }, 2*time.Minute, poll).Should(Equal(8))
		eventuallyCondition(churning, v1alpha1.ConditionReady, v1alpha1.ReasonEndpointsReady)

		const measured = time.Minute
		startChurning, startSteady := sliceGeneration(ns, "churning"), sliceGeneration(ns, "steady")
		started := time.Now()
		// Counting over a fixed period is the measurement, not a wait for
		// a condition.
		Consistently(func() int { return len(addressesOf(slicesOf(ns, "steady"))) }, measured, time.Second).Should(Equal(8))
		elapsed := time.Since(started)
		perHour := func(writes int64) float64 { return float64(writes) * float64(time.Hour) / float64(elapsed) }
		churnWrites, steadyWrites := sliceGeneration(ns, "churning")-startChurning, sliceGeneration(ns, "steady")-startSteady
		fmt.Fprintf(GinkgoWriter, "EndpointSlice writes for 3 of 8 addresses rotating at TTL 5s over %s: without rotationWindow %d (%.0f/hour), with rotationWindow 2m %d (%.0f/hour)\n",
			elapsed.Round(time.Second), churnWrites, perHour(churnWrites), steadyWrites, perHour(steadyWrites))
		AddReportEntry("slice writes per hour", fmt.Sprintf("without rotationWindow %.0f, with rotationWindow 2m %.0f", perHour(churnWrites), perHour(steadyWrites)))
		Expect(churnWrites).To(BeNumerically(">=", 5), "every answer (each 5s) changes the set without a window")
		Expect(steadyWrites).To(BeZero(), "the set of 8 does not change")
	})
})
