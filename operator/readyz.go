package operator

import (
	"context"
	"errors"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// cacheSyncWait bounds how long one /readyz request waits for the caches;
// under the kubelet's default probe timeout (1s).
const cacheSyncWait = 500 * time.Millisecond

// cachesSynced is the /readyz check: ready once the informer caches have
// synced. Every replica fills its caches, the standbys too, so a rolling
// update only proceeds past a replica that could take the lease and
// reconcile at once.
func cachesSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), cacheSyncWait)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced with the API server yet")
		}
		return nil
	}
}
