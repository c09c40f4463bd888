package store

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/sbx-dev/sbx/internal/errdefs"
	"github.com/sbx-dev/sbx/internal/ids"
)

// Key is a tenant: one API key. Its secret is never stored, only a hash.
type Key struct {
	ID      string
	Name    string
	Created time.Time
	Revoked time.Time // zero while active
}

// Active reports whether the key still opens the API.
func (k Key) Active() bool { return k.Revoked.IsZero() }

// keyPrefix starts every key, so that a leaked one is recognisable (secret
// scanners) and a key is told apart from a session API key.
const keyPrefix = "sbxk_"

// CreateKey makes a key named name and returns it with its secret, the
// only time the secret exists outside the client.
func (s *Store) CreateKey(ctx context.Context, name string) (Key, string, error) {
	if err := checkKeyName(name); err != nil {
		return Key{}, "", err
	}
	id := ids.New(8)
	secret := keyPrefix + id + "_" + ids.New(24)
	k := Key{ID: id, Name: name, Created: s.now().UTC().Truncate(time.Microsecond)}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO keys (id, name, hash, created_at) VALUES (?, ?, ?, ?)`),
		k.ID, k.Name, hashKey(secret), nanos(k.Created))
	if isUnique(err) {
		return Key{}, "", fmt.Errorf("store: a key named %q exists: %w", name, errdefs.ErrAlreadyExists)
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("store: create key: %w", err)
	}
	return k, secret, nil
}

func checkKeyName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("store: a key name has 1 to 64 characters: %w", errdefs.ErrInvalidArgument)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.@", r)) {
			return fmt.Errorf("store: key name %q: only letters, digits and - _ . @: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

func hashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Authenticate returns the active key whose secret this is. Every failure
// is ErrUnauthorized with the same message, and a well-formed secret costs
// one indexed read and one constant-time comparison whether or not its id
// exists.
func (s *Store) Authenticate(ctx context.Context, secret string) (Key, error) {
	unauthorized := fmt.Errorf("store: invalid API key: %w", errdefs.ErrUnauthorized)
	rest, ok := strings.CutPrefix(secret, keyPrefix)
	if !ok {
		return Key{}, unauthorized
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 {
		return Key{}, unauthorized
	}
	k, hash, err := s.key(ctx, `id = ?`, id)
	if errors.Is(err, errdefs.ErrNotFound) {
		hash = strings.Repeat("0", 64)
	} else if err != nil {
		return Key{}, err
	}
	want := hashKey(secret)
	if subtle.ConstantTimeCompare([]byte(hash), []byte(want)) != 1 || err != nil || !k.Active() {
		return Key{}, unauthorized
	}
	return k, nil
}

func (s *Store) key(ctx context.Context, where string, args ...any) (Key, string, error) {
	var k Key
	var hash string
	var created int64
	var revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, name, hash, created_at, revoked_at FROM keys WHERE `+where), args...).
		Scan(&k.ID, &k.Name, &hash, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, "", fmt.Errorf("store: no such key: %w", errdefs.ErrNotFound)
	}
	if err != nil {
		return Key{}, "", fmt.Errorf("store: read key: %w", err)
	}
	k.Created = fromNanos(created)
	if revoked.Valid {
		k.Revoked = fromNanos(revoked.Int64)
	}
	return k, hash, nil
}

// Keys lists every key, revoked ones included, oldest first.
func (s *Store) Keys(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at, revoked_at FROM keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.ID, &k.Name, &created, &revoked); err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		k.Created = fromNanos(created)
		if revoked.Valid {
			k.Revoked = fromNanos(revoked.Int64)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return out, nil
}

// RevokeKey revokes the active key with this name or id. Its runtimes are
// the service's to stop; the key opens nothing from now on.
func (s *Store) RevokeKey(ctx context.Context, nameOrID string) (Key, error) {
	now := nanos(s.now().UTC())
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE keys SET revoked_at = ? WHERE revoked_at IS NULL AND (name = ? OR id = ?)`), now, nameOrID, nameOrID)
	if err != nil {
		return Key{}, fmt.Errorf("store: revoke key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Key{}, fmt.Errorf("store: no active key named %q: %w", nameOrID, errdefs.ErrNotFound)
	}
	k, _, err := s.key(ctx, `revoked_at = ? AND (name = ? OR id = ?)`, now, nameOrID, nameOrID)
	return k, err
}
