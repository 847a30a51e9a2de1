package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/forgetmenot/forgetmenot/internal/httpx"
)

// client talks to a running daemon's /v1 API.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(base, token string) *client {
	return &client{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}
}

// apiError is a refusal by the daemon, with its explanation.
type apiError struct {
	status int
	body   httpx.ErrorBody
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.body.Error, e.status)
}

func (c *client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the daemon at %s (is `forgetmenot serve` running? set FORGETMENOT_API_URL otherwise): %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{status: resp.StatusCode}
		switch {
		case json.Unmarshal(raw, &e.body) == nil && e.body.Error != "":
		case resp.StatusCode == http.StatusNotFound:
			// Not our JSON 404 (unknown complaint, …) but the router's: the
			// endpoint itself is missing.
			e.body.Error = fmt.Sprintf("the daemon does not serve %s %s: that feature is not configured on it, or it is older than this CLI", method, path)
		default:
			e.body.Error = http.StatusText(resp.StatusCode)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if rb, ok := out.(rawBody); ok {
		*rb.b = raw
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the daemon answered something unexpected: %w", err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
