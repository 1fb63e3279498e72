// Package cpumeter measures what a benchmark scenario costs the process:
// CPU time (user + system, from getrusage) and the goroutines it added.
// Benchmarks of long-running loops (re-resolution, probing) use it instead
// of ns/op, which would only measure wall time.
package cpumeter

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// Meter is a running measurement.
type Meter struct {
	cpu        time.Duration
	goroutines int
	peak       int
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Baseline records the goroutine count before the scenario starts.
func Baseline() *Meter { return &Meter{goroutines: runtime.NumGoroutine()} }

// Start begins counting CPU time (call it after warm-up).
func (m *Meter) Start() { m.cpu = cpuNow() }

// Sample records the goroutines alive now; call it while the scenario runs.
func (m *Meter) Sample() { m.peak = max(m.peak, runtime.NumGoroutine()) }

// CPU is the CPU time used since Start.
func (m *Meter) CPU() time.Duration { return cpuNow() - m.cpu }

// Goroutines is the most goroutines the scenario added over the baseline.
func (m *Meter) Goroutines() int { return m.peak - m.goroutines }

// Window is how long a benchmark measures its scenario: 5 s, or
// $OUTPOST_BENCH_WINDOW (a Go duration) for longer, steadier figures.
func Window() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("OUTPOST_BENCH_WINDOW")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Second
}

// Measure starts counting CPU time and samples the goroutines every 100 ms
// until window has passed; read CPU and Goroutines afterwards.
func (m *Meter) Measure(window time.Duration) {
	m.Start()
	for begin := time.Now(); time.Since(begin) < window; {
		time.Sleep(100 * time.Millisecond)
		m.Sample()
	}
}
