package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rotorhq/rotor/internal/pgtest"
)

// demoRole is the role db_whoami logs in as on the throwaway cluster.
const demoRole = "rotor_demo"

// demoDB is a throwaway PostgreSQL cluster for the embedded default, started
// as the tests start one (internal/pgtest): a new cluster in a temporary
// directory, on a loopback port, scram-sha-256 for every connection.
type demoDB struct {
	pg  *pgtest.Server
	url string // without credentials
	bin string
}

// startDemoDB starts the cluster, creates demoRole with a random password
// and writes {"username", "password"} to dir/db.json. Where PostgreSQL is
// not installed, it returns nil and an error that says what to install.
func startDemoDB(ctx context.Context, dir string) (*demoDB, error) {
	bin, err := pgtest.BinDir()
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL's server binaries (initdb, postgres) are not installed: " +
			"install them (Debian and Ubuntu: apt-get install postgresql; macOS: brew install postgresql) " +
			"for a throwaway cluster, or pass -db postgres://HOST:PORT/DB with credentials of your own")
	}
	pg, err := pgtest.StartServer(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting a throwaway PostgreSQL cluster: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			pg.Stop()
		}
	}()
	password := rand.Text()
	conn, err := pgx.Connect(ctx, pg.SuperURL())
	if err != nil {
		return nil, fmt.Errorf("the throwaway PostgreSQL cluster: %w", err)
	}
	defer conn.Close(context.Background())
	// A password cannot be a parameter of CREATE ROLE; rand.Text is base32.
	if _, err := conn.Exec(ctx, "CREATE ROLE "+demoRole+" LOGIN PASSWORD '"+password+"'"); err != nil {
		return nil, fmt.Errorf("the throwaway PostgreSQL cluster: %w", err)
	}
	cred, _ := json.Marshal(map[string]string{"username": demoRole, "password": password})
	if err := os.WriteFile(filepath.Join(dir, "db.json"), cred, 0o600); err != nil {
		return nil, err
	}
	ok = true
	return &demoDB{
		pg:  pg,
		url: fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable", pg.Host, pg.Port),
		bin: bin,
	}, nil
}

// howToRotate returns the lines that say how to rotate the role's password
// live: ALTER ROLE, then the file, or the rotation agent (examples/rotator)
// doing both for a server polling every ttl. The superuser's password is
// the throwaway cluster's, printed on purpose.
func (d *demoDB) howToRotate(dir string, ttl time.Duration) []string {
	psql := "psql"
	if _, err := exec.LookPath(psql); err != nil {
		psql = filepath.Join(d.bin, "psql")
	}
	return []string{
		"rotate its password live: first",
		fmt.Sprintf("    PGPASSWORD=%s %s -h %s -p %d -U %s -d postgres -c \"ALTER ROLE %s PASSWORD 'new-password-1'\"",
			d.pg.Password, psql, d.pg.Host, d.pg.Port, pgtest.SuperUser, demoRole),
		"then",
		fmt.Sprintf("    printf '%%s' '{\"username\":\"%s\",\"password\":\"new-password-1\"}' > %s",
			demoRole, filepath.Join(dir, "db.json")),
		"(rotor logs in with the new password before it uses it; the pool's connections log in with it from then on, and db_whoami's pid and session_start name the session)",
		"or let the rotation agent do both, then wait out the overlap (3 x -ttl) and revoke the old password:",
		fmt.Sprintf("    go run ./examples/rotator -secrets %s -db '%s' -ttl %s", dir, d.url, ttl),
	}
}

// stop shuts the cluster down and removes its files.
func (d *demoDB) stop() error { return d.pg.Stop() }
