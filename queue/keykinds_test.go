package queue_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/forgetmenot/forgetmenot/queue"
)

// What must hold: every key the store names without an argument is of a
// kind the erasure map knows (and so README's Privacy section names): a new
// index cannot be added without saying whether it holds personal data.
func TestEveryNamedKeyIsInTheErasureMap(t *testing.T) {
	keys, err := queue.NewKeys("kinds")
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(keys)
	for i := range v.NumMethod() {
		m, name := v.Method(i), v.Type().Method(i).Name
		if m.Type().NumIn() != 0 || m.Type().NumOut() != 1 || m.Type().Out(0).Kind() != reflect.String {
			continue
		}
		key := m.Call(nil)[0].String()
		if strings.HasSuffix(key, "*") || strings.HasSuffix(key, ":") || !strings.HasPrefix(key, "{kinds}:") {
			continue // a pattern or a prefix, not a key
		}
		if strings.HasPrefix(name, "Legacy") {
			continue // an earlier layout's key, gone after the migration at start
		}
		if _, known := keys.KindOf(key); !known {
			t.Errorf("Keys.%s() = %s is of no kind in the erasure map", name, key)
		}
	}
}
