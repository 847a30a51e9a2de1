package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex hmac>[,v1=<hex hmac>…]".
const SignatureHeader = "X-Forgetmenot-Signature"

// MaxSkew is how far a signature's timestamp may be from now: it bounds how
// long a captured request could be replayed (and a replay is deduplicated by
// source_id anyway).
const MaxSkew = 5 * time.Minute

// Sign returns the header value for body at t, signed with each secret: what a
// sender computes (and the tests and docs use).
func Sign(body []byte, t time.Time, secrets ...string) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	parts := []string{"t=" + ts}
	for _, s := range secrets {
		parts = append(parts, "v1="+hex.EncodeToString(mac([]byte(s), ts, body)))
	}
	return strings.Join(parts, ",")
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

var errNoSignature = errors.New("missing " + SignatureHeader + " header")

// verify accepts the header if any v1 value matches any configured secret and
// the timestamp is within MaxSkew of now. Comparisons are constant-time.
func verify(header string, body []byte, now time.Time, secrets [][]byte) error {
	if header == "" {
		return errNoSignature
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("malformed %s: %q is not key=value", SignatureHeader, part)
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return fmt.Errorf("malformed %s: v1 must be a hex HMAC-SHA256", SignatureHeader)
			}
			sigs = append(sigs, sig)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("malformed %s: t must be unix seconds", SignatureHeader)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("malformed %s: no v1 signature", SignatureHeader)
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > MaxSkew || skew < -MaxSkew {
		return fmt.Errorf("signature timestamp is %s off; more than %s is refused (check the sender's clock)", skew.Round(time.Second), MaxSkew)
	}
	for _, secret := range secrets {
		want := mac(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return errors.New("signature does not match the body: check the secret and that the raw body is signed as sent")
}
