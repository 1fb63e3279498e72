package syncer

import (
	"encoding/json"
	"net/http"
	"time"
)

// Healthz answers a liveness probe like kube-proxy's /healthz: 200 while the
// rules were brought up to date within Bound, 503 once the syncer has gone
// longer without a successful sync (stuck, or every sync failing), so that the
// kubelet restarts it. A syncer that has not synced yet counts from its start.
type Healthz struct {
	// Start is when the syncer started.
	Start time.Time
	// LastSuccess is the time of the last successful sync (zero before
	// the first).
	LastSuccess func() time.Time
	// Bound is how old the last successful sync may be: 2 × --sync-period,
	// kube-proxy's choice, since a healthy syncer does a full sync at least
	// once a period.
	Bound time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// healthzStatus is the body, with kube-proxy's field names.
type healthzStatus struct {
	LastUpdated time.Time `json:"lastUpdated"`
	CurrentTime time.Time `json:"currentTime"`
	Healthy     bool      `json:"healthy"`
}

func (h Healthz) status() healthzStatus {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	last := h.Start
	if t := h.LastSuccess(); t.After(last) {
		last = t
	}
	current := now()
	return healthzStatus{LastUpdated: last, CurrentTime: current, Healthy: current.Sub(last) <= h.Bound}
}

func (h Healthz) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	st := h.status()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !st.Healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(st)
}
