package daemon_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/daemon"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
	"github.com/forgetmenot/forgetmenot/router"
	"github.com/redis/go-redis/v9"
)

// A replica of a version before layout 5, still running during an upgrade,
// stores complaints as hashes of version and data. What must hold: the next
// start converts them, says so in its log (an operator learns that an old
// replica is about), and the complaint reads as before.
func TestStartConvertsComplaintsAnOlderReplicaWroteAndSaysSo(t *testing.T) {
	url := testredis.URL(t)
	first := start(t, url)
	code, out := first.post(`{"source_id":"form-1","customer":{"email":"jan@voorbeeld.nl"},"body":"Mijn pakket is niet aangekomen."}`, "")
	if code != http.StatusAccepted {
		t.Fatalf("ingest: %d %v", code, out)
	}
	id := first.routed(out["message_id"].(string), "")["complaint_id"].(string)
	if strings.Contains(first.log.String(), "migrated") {
		t.Errorf("a start on an empty namespace says it migrated something; log:\n%s", first.log)
	}
	_, before := first.call("GET", "/v1/complaints/"+id, nil, "")
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	// What the older replica would have written.
	ctx := context.Background()
	rdb, keys := namespaceClient(t, url, first.cfg.Namespace)
	key := keys.Complaint(id)
	data, err := rdb.Get(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, key)
	rdb.HSet(ctx, key, "version", "1", "data", data)

	second := start(t, url, func(c *configs.Config) { c.Namespace = first.cfg.Namespace })
	testkit.WaitFor(t, "the start to convert the complaint", func() bool {
		return strings.Contains(second.log.String(), "complaints_converted=1")
	})
	if log := second.log.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "a replica of an older version wrote them") {
		t.Errorf("the conversion is not a warning that names its cause; log:\n%s", log)
	}
	if typ, err := rdb.Type(ctx, key).Result(); err != nil || typ != "string" {
		t.Errorf("after the start the complaint is a %q (%v), want a string", typ, err)
	}
	if code, after := second.call("GET", "/v1/complaints/"+id, nil, ""); code != http.StatusOK || !reflect.DeepEqual(after["complaint"], before["complaint"]) {
		t.Errorf("the complaint after the conversion: %d %v; want it as before: %v", code, after["complaint"], before["complaint"])
	}
}

// A replica of this version started on data a newer version has stored
// would misread it (as a replica of layout 5 read layout 6's records as
// blank complaints and went on routing, delivering and answering). What
// must hold: it stops with an error that says why and what to do, and
// routes and delivers nothing before that.
func TestStartOnDataOfANewerVersionStopsAndSaysSo(t *testing.T) {
	url := testredis.URL(t)
	cfg := testConfig(url)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb, keys := namespaceClient(t, url, cfg.Namespace)
	// A newer version's layout, with a notification it queued.
	rdb.Set(ctx, keys.Layout(), 99, 0)
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Outbox(), Values: []string{"data", `{"notification":{"id":"n1","kind":"assigned","recipient":"anna","complaint":{"v2":"?"}}}`, "attempt", "0"}})

	logs := &testkit.LockedBuffer{}
	d, err := daemon.New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	notes := &recorder{}
	d.SetNotifier(notes)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, queue.ErrNewerLayout) || !strings.Contains(err.Error(), "layout 99") {
			t.Errorf("Run on layout 99: %v; want the newer layout named", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the daemon kept running on data of a newer layout; log:\n%s", logs)
	}
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "run the newer version") {
		t.Errorf("the refusal is not an error that says what to do; log:\n%s", log)
	}
	if n := notes.count(router.NotifyAssigned); n != 0 {
		t.Errorf("the refused replica delivered %d notifications", n)
	}
	if v, _ := rdb.Get(ctx, keys.Layout()).Int(); v != 99 {
		t.Errorf("layout %d after the refusal, want 99 as it was", v)
	}
}

// namespaceClient is a client of the Redis at url, closed with the test,
// and the keys of namespace ns: to write what another version would have.
func namespaceClient(t *testing.T, url, ns string) (*redis.Client, queue.Keys) {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	keys, err := queue.NewKeys(ns)
	if err != nil {
		t.Fatal(err)
	}
	return rdb, keys
}
