package daemon

import (
	"context"
	"time"

	"github.com/forgetmenot/forgetmenot/api"
	"github.com/forgetmenot/forgetmenot/internal/privacy"
)

// Privacy: export and erasure of a customer (/v1/customers/{key}/…), the
// retention period for closed complaints, and the resumption of erasures a
// crash interrupted. Always on; retention only when RETENTION is set.
func init() { componentBuilders = append(componentBuilders, buildPrivacy) }

const (
	// retentionBatch bounds one round of retention erasures: small, so the
	// erasures mix with routing instead of holding Redis up.
	retentionBatch = 50
	// privacyPoll is how often the background round runs.
	privacyPoll = time.Minute
)

func buildPrivacy(deps Deps) (*Component, error) {
	svc, err := privacy.New(privacy.Config{Store: deps.Store, Closer: deps.Router, Logger: deps.Log.With("component", "privacy")})
	if err != nil {
		return nil, err
	}
	retention := deps.Config.Retention.D()
	holder, ttl := deps.Config.ConsumerNameOrDefault(), deps.Config.ReclaimIdle.D()
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &Component{
		Name:   "privacy",
		Routes: api.PrivacyRoutes(deps.APIAccess, svc, deps.Log),
		// One replica at a time runs the round (each erasure step is safe to
		// repeat, so an overlap at a lease handover does nothing twice).
		Run: func(ctx context.Context) error {
			runLeased(ctx, deps.Store.State("privacy"), "lease:retention", holder, ttl, deps.Log.With("component", "privacy"),
				func(ctx context.Context) { svc.RetentionLoop(ctx, retention, retentionBatch, privacyPoll) })
			return nil
		},
	}, nil
}
