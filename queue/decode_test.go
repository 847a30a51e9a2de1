package queue_test

import (
	"encoding/json"

	"github.com/forgetmenot/forgetmenot/router"
)

func decodeMessage(b []byte) (router.Message, error) {
	var m router.Message
	return m, json.Unmarshal(b, &m)
}
