package email

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
)

// SecretStore keeps the deployment's Message-ID secret: Claim stores a value
// only if the key is free (atomically, SET NX), Get reads it.
type SecretStore interface {
	Claim(ctx context.Context, k, value string, ttl time.Duration) (bool, error)
	Get(ctx context.Context, k string) (string, bool, error)
}

// MessageIDSecretKey is the State key of the deployment's Message-ID secret.
const MessageIDSecretKey = "message-id-secret"

// MessageIDs mints the Message-IDs of the mail we send and recognises them
// in bounces.
//
// An id is "fmn.<message id>.<tag>@<our domain>", where tag is an HMAC of
// the rest keyed by a random secret created once per deployment (per Redis
// namespace) and kept in Redis. So ids are stable across retries and
// restarts (a retried send is the same mail), never the same in two
// deployments that share a domain (threading never crosses them), and cannot
// be guessed from a complaint number: a customer cannot forge a bounce or a
// thread reference for a mail they never received.
type MessageIDs struct {
	store SecretStore

	mu  sync.Mutex
	key []byte
}

// NewMessageIDs mints ids with the secret in store.
func NewMessageIDs(store SecretStore) *MessageIDs { return &MessageIDs{store: store} }

const secretBytes = 32

// secret loads the deployment secret, creating it on first use: of several
// replicas creating it at once, one wins (SET NX) and all use its value.
func (m *MessageIDs) secret(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key != nil {
		return m.key, nil
	}
	v, found, err := m.store.Get(ctx, MessageIDSecretKey)
	if err != nil {
		return nil, fmt.Errorf("reading the Message-ID secret: %w", err)
	}
	if !found {
		fresh := make([]byte, secretBytes)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("creating the Message-ID secret: %w", err)
		}
		if _, err := m.store.Claim(ctx, MessageIDSecretKey, hex.EncodeToString(fresh), 0); err != nil {
			return nil, fmt.Errorf("storing the Message-ID secret: %w", err)
		}
		if v, found, err = m.store.Get(ctx, MessageIDSecretKey); err != nil || !found {
			return nil, fmt.Errorf("reading the Message-ID secret back (found %v): %w", found, err)
		}
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) != secretBytes {
		return nil, fmt.Errorf("the Message-ID secret in Redis (%s) is damaged: want %d hex-encoded bytes", MessageIDSecretKey, secretBytes)
	}
	m.key = key
	return key, nil
}

// For returns the Message-ID (without angle brackets) of the customer
// message with the stable id, sent from domain.
func (m *MessageIDs) For(ctx context.Context, id, domain string) (string, error) {
	key, err := m.secret(ctx)
	if err != nil {
		return "", err
	}
	local := "fmn." + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '.'
	}, id)
	domain = strings.ToLower(domain)
	return local + "." + tag(key, local, domain) + "@" + domain, nil
}

// Ours reports whether id is a Message-ID this deployment minted.
func (m *MessageIDs) Ours(ctx context.Context, id string) (bool, error) {
	at := strings.LastIndexByte(id, '@')
	if at < 0 || !strings.HasPrefix(id, "fmn.") {
		return false, nil
	}
	local, domain := id[:at], strings.ToLower(id[at+1:])
	dot := strings.LastIndexByte(local, '.')
	if dot <= len("fmn") {
		return false, nil
	}
	key, err := m.secret(ctx)
	if err != nil {
		return false, err
	}
	want := tag(key, local[:dot], domain)
	return hmac.Equal([]byte(local[dot+1:]), []byte(want)), nil
}

var tagEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// tag is 120 bits of HMAC-SHA256 over the id's local part and domain.
func tag(key []byte, local, domain string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(local + "@" + domain))
	return tagEncoding.EncodeToString(mac.Sum(nil)[:15])
}
