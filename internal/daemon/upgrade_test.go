package daemon_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/internal/testkit"
	"github.com/forgetmenot/forgetmenot/internal/testredis"
	"github.com/forgetmenot/forgetmenot/queue"
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
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys, err := queue.NewKeys(first.cfg.Namespace)
	if err != nil {
		t.Fatal(err)
	}
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
