// Package store is sandbox-api's state: API keys (hashed) and runtimes,
// in SQLite (a file; pure Go, so the service stays one static binary) or
// PostgreSQL (a DSN), behind one type whose behaviour a single conformance
// suite checks on both. It stores; it does not decide: the lifecycle table
// (Allowed) is enforced here so that no caller can write a transition the
// service does not allow, but which transition to make is the service's.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sbx-dev/sbx/internal/errdefs"
)

// Store is an open database.
type Store struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
}

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// IsPostgres reports whether dsn names a PostgreSQL database rather than
// a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens (and creates or migrates) the database dsn names: a
// postgres:// or postgresql:// URL, or a SQLite file path (optionally
// prefixed "sqlite:"). The SQLite file's directory must exist.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, fmt.Errorf("store: empty database name: %w", errdefs.ErrInvalidArgument)
	}
	s := &Store{now: time.Now}
	var err error
	if IsPostgres(dsn) {
		s.dialect = dialectPostgres
		s.db, err = sql.Open("pgx", dsn)
	} else {
		path := strings.TrimPrefix(dsn, "sqlite:")
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("store: SQLite path %q: '?' and '#' are not allowed in the file name: %w", path, errdefs.ErrInvalidArgument)
		}
		// WAL: pollers read while the service writes; busy_timeout: the
		// writers of a burst of creates queue instead of failing;
		// synchronous=NORMAL is durable in WAL mode across a process
		// crash (kill -9), which is the failure the service plans for.
		q := url.Values{}
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		s.db, err = sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	}
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	// database/sql keeps 2 idle connections by default: 30 pollers would
	// then open (and, for SQLite, re-run the pragmas of) a connection on
	// most requests.
	s.db.SetMaxOpenConns(32)
	s.db.SetMaxIdleConns(32)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect %s: %w: %w", redact(dsn), errdefs.ErrUnavailable, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers (for /healthz).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: %w: %w", errdefs.ErrUnavailable, err)
	}
	return nil
}

// redact drops a DSN's password for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// migrations are applied in order, each once; the version is their count.
// Times are Unix nanoseconds and hashes hex text, so both databases store
// the same values with the same types.
func migrations() []string {
	return []string{
		`CREATE TABLE keys (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		hash TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		revoked_at BIGINT
	);
	CREATE UNIQUE INDEX keys_name_active ON keys (name) WHERE revoked_at IS NULL;
	CREATE TABLE runtimes (
		id TEXT PRIMARY KEY,
		tenant TEXT NOT NULL REFERENCES keys (id),
		session_id TEXT NOT NULL,
		state TEXT NOT NULL,
		pod_status TEXT NOT NULL,
		reason TEXT NOT NULL,
		session_api_key TEXT NOT NULL,
		spec TEXT NOT NULL,
		backend TEXT NOT NULL,
		backend_id TEXT NOT NULL,
		restart_count INTEGER NOT NULL,
		generation BIGINT NOT NULL,
		created_at BIGINT NOT NULL,
		updated_at BIGINT NOT NULL
	);
	CREATE UNIQUE INDEX runtimes_live_session ON runtimes (tenant, session_id) WHERE state IN ('starting', 'running', 'paused');
	CREATE INDEX runtimes_session ON runtimes (tenant, session_id, created_at);
	CREATE INDEX runtimes_state ON runtimes (state);`,
	}
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	if s.dialect == dialectPostgres {
		// Two services starting on one database migrate one at a time.
		if _, err := tx.ExecContext(ctx, `LOCK TABLE schema_version IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("store: migrate: %w", err)
	}
	migrations := migrations()
	if version > len(migrations) {
		return fmt.Errorf("store: the database is at schema version %d, newer than this sandbox-api (%d): %w", version, len(migrations), errdefs.ErrConflict)
	}
	for i := version; i < len(migrations); i++ {
		for _, stmt := range strings.Split(migrations[i], ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("store: migration %d: %w", i+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE schema_version SET version = ?`), len(migrations)); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// q rewrites ? placeholders as $1, $2, … for PostgreSQL. Queries here
// hold no '?' in literals.
func (s *Store) q(query string) string {
	if s.dialect != dialectPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isUnique reports a unique-constraint violation in either database.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
