package operator

import (
	"context"
	"net/http/httptest"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// syncingCache is a cache whose informers have synced or not.
type syncingCache struct {
	cache.Cache
	synced bool
}

func (c syncingCache) WaitForCacheSync(ctx context.Context) bool {
	if !c.synced {
		<-ctx.Done()
	}
	return c.synced
}

func TestReadyOnlyOnceTheCachesHaveSynced(t *testing.T) {
	req := httptest.NewRequest("GET", "/readyz", nil)
	if err := cachesSynced(syncingCache{synced: false})(req); err == nil {
		t.Error("ready before the caches synced")
	}
	if err := cachesSynced(syncingCache{synced: true})(req); err != nil {
		t.Errorf("not ready with synced caches: %v", err)
	}
}
