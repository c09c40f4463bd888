// Package storetest gives tests a PostgreSQL database of their own, on
// the server SBX_TEST_POSTGRES names (.ci/run starts one), for the store
// suite and the service's tests on PostgreSQL.
package storetest

import (
	"database/sql"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/sbx-dev/sbx/internal/ids"
)

// Postgres returns the DSN of a new, empty database, dropped when the
// test ends. Without SBX_TEST_POSTGRES the test is skipped, or fails when
// SBX_REQUIRE_POSTGRES=1.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv("SBX_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("SBX_REQUIRE_POSTGRES") == "1" {
			t.Fatal("SBX_REQUIRE_POSTGRES=1 but SBX_TEST_POSTGRES is not set")
		}
		t.Skip("SBX_TEST_POSTGRES is not set (e.g. postgres://sbx:sbx@127.0.0.1:5432/sbx)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "sbx_test_" + ids.New(6)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database (SBX_TEST_POSTGRES's user needs CREATEDB): %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer a.Close()
		// An autovacuum worker (a superuser backend, which FORCE may not
		// end for a non-superuser) can hold a fresh database a moment.
		for range 50 {
			if _, err = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("drop %s: %v", name, err)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
