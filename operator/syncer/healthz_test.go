package syncer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHealthzFailsOnceTheLastSuccessfulSyncIsOlderThanTheBound(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var lastSuccess time.Time
	now := start
	h := Healthz{Start: start, LastSuccess: func() time.Time { return lastSuccess }, Bound: 2 * time.Hour,
		Now: func() time.Time { return now }}
	get := func() (int, healthzStatus) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		var st healthzStatus
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
		return rec.Code, st
	}
	for _, step := range []struct {
		name        string
		lastSuccess time.Time
		now         time.Time
		wantCode    int
		wantUpdated time.Time
	}{
		{"just started, not synced yet", time.Time{}, start.Add(time.Minute), http.StatusOK, start},
		{"never synced within the bound", time.Time{}, start.Add(2*time.Hour + time.Second), http.StatusServiceUnavailable, start},
		{"synced: healthy again", start.Add(3 * time.Hour), start.Add(3 * time.Hour), http.StatusOK, start.Add(3 * time.Hour)},
		{"at the bound", start.Add(3 * time.Hour), start.Add(5 * time.Hour), http.StatusOK, start.Add(3 * time.Hour)},
		{"past the bound", start.Add(3 * time.Hour), start.Add(5*time.Hour + time.Second), http.StatusServiceUnavailable, start.Add(3 * time.Hour)},
	} {
		lastSuccess, now = step.lastSuccess, step.now
		code, st := get()
		if code != step.wantCode || !st.LastUpdated.Equal(step.wantUpdated) || !st.CurrentTime.Equal(now) || st.Healthy != (code == http.StatusOK) {
			t.Errorf("%s: got %d %+v, want %d with lastUpdated %s", step.name, code, st, step.wantCode, step.wantUpdated)
		}
	}
}
