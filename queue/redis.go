package queue

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Connection limits shared by the single-node and the cluster client. A
// command gets one retry; the daemon's own loops back off on longer outages.
const (
	dialTimeout  = 3 * time.Second
	readTimeout  = 5 * time.Second
	writeTimeout = 5 * time.Second
)

// Connect builds a client from a redis:// or rediss:// URL (password and
// database number in the URL), or from a redis+cluster:// (rediss+cluster://)
// URL naming one or more seed nodes of a Redis Cluster, comma-separated:
// redis+cluster://[:password@]host1:port1,host2:port2. It does not dial: the
// daemon starts even while Redis is away, reports not-ready, and catches up
// when it returns.
func Connect(rawURL string) (redis.UniversalClient, error) {
	if IsClusterURL(rawURL) {
		opt, err := parseClusterURL(rawURL)
		if err != nil {
			return nil, err
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dialTimeout, readTimeout, writeTimeout
		opt.MaxRetries = 1
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dialTimeout, readTimeout, writeTimeout
	opt.MaxRetries = 1
	return redis.NewClient(opt), nil
}

// IsClusterURL tells whether rawURL names a Redis Cluster.
func IsClusterURL(rawURL string) bool {
	return strings.HasPrefix(rawURL, "redis+cluster://") || strings.HasPrefix(rawURL, "rediss+cluster://")
}

// parseClusterURL turns redis+cluster://[user:pass@]h1:p1,h2:p2[?options] into
// cluster options. A cluster has no database numbers, so a path other than
// "" or "/0" is refused rather than silently ignored.
func parseClusterURL(rawURL string) (*redis.ClusterOptions, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cluster URL: %w", err)
	}
	if p := strings.TrimPrefix(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("cluster URL: Redis Cluster has only database 0, not %q", p)
	}
	var addrs []string
	for _, a := range strings.Split(u.Host, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strings.Contains(a, ":") {
			a += ":6379"
		}
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("cluster URL: name at least one node as host:port")
	}
	// Hand the first node and the options to go-redis's own parser, the other
	// seeds as its addr= parameters.
	q := u.Query()
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	base := url.URL{Scheme: strings.TrimSuffix(u.Scheme, "+cluster"), User: u.User, Host: addrs[0], RawQuery: q.Encode()}
	opt, err := redis.ParseClusterURL(base.String())
	if err != nil {
		return nil, fmt.Errorf("cluster URL: %w", err)
	}
	return opt, nil
}

// scanner returns the client that holds the namespace's keys: the client
// itself, or in a cluster the master of the namespace's slot. Every scan of
// the namespace goes through it: a keyless SCAN sent to a cluster client
// reaches one arbitrary node. go-redis v9.23 routes a SCAN whose MATCH holds
// a hash tag to that slot, but that is its choice, not Redis's, and with
// read_only in the URL it may pick a replica that has not caught up; an
// erasure that missed a key would still report success.
func (s *Store) scanner(ctx context.Context) (redis.Cmdable, error) {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, s.keys.Complaints())
		if err != nil {
			return nil, fmt.Errorf("finding the cluster node of namespace %s: %w", s.keys.tag, err)
		}
		return node, nil
	}
	return s.rdb, nil
}

// Embedded is an in-process, in-memory Redis (miniredis) so forgetmenot can be
// tried with nothing installed. Its data is gone when the process ends.
type Embedded struct {
	srv *miniredis.Miniredis
}

// StartEmbedded starts the in-memory Redis on a loopback port.
func StartEmbedded() (*Embedded, error) {
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("starting embedded redis: %w", err)
	}
	return &Embedded{srv: srv}, nil
}

// URL is the address to connect to.
func (e *Embedded) URL() string { return "redis://" + e.srv.Addr() }

// Close stops the server; its data is lost.
func (e *Embedded) Close() { e.srv.Close() }
