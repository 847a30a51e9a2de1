// Package httpx holds the few HTTP helpers the API and the HTTP channels
// share: JSON answers, JSON errors, and who the real client of a request is
// (behind trusted proxies) and whether it is on this host.
package httpx

import (
	"encoding/json"
	"net/http"
)

// ErrorBody is every JSON error answer: what is wrong, and which input field
// when there is one.
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers with an ErrorBody.
func WriteError(w http.ResponseWriter, status int, msg, field string) {
	WriteJSON(w, status, ErrorBody{Error: msg, Field: field})
}
