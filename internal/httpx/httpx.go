// Package httpx holds the few HTTP helpers the API and the HTTP channels
// share: JSON answers, JSON errors and the loopback check.
package httpx

import (
	"encoding/json"
	"net"
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

// IsLoopback reports whether the request's peer address is a loopback
// address. Forwarding headers are deliberately ignored: they are set by the
// caller and prove nothing.
func IsLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
