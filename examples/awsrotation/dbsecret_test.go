package main

import "testing"

// TestOtherDatabaseComparesServerAndDatabase: two secrets name the same
// database only with the same host (without case), port, engine family
// and, where it counts, dbname.
func TestOtherDatabaseComparesServerAndDatabase(t *testing.T) {
	base := dbSecret{engine: "postgres", host: "db.example.com", port: 5432, dbname: "app"}
	for _, c := range []struct {
		name   string
		edit   func(*dbSecret)
		withDB bool
		want   string
	}{
		{"same", func(*dbSecret) {}, true, ""},
		{"host case", func(d *dbSecret) { d.host = "DB.example.com" }, true, ""},
		{"host", func(d *dbSecret) { d.host = "other.example.com" }, true, "host"},
		{"port", func(d *dbSecret) { d.port = 5433 }, true, "port"},
		{"aurora", func(d *dbSecret) { d.engine = "aurora-postgresql" }, true, ""},
		{"engine", func(d *dbSecret) { d.engine = "mysql" }, true, "engine"},
		{"dbname", func(d *dbSecret) { d.dbname = "postgres" }, true, "dbname"},
		{"dbname of a master", func(d *dbSecret) { d.dbname = "postgres" }, false, ""},
	} {
		o := base
		c.edit(&o)
		if got := base.otherDatabase(o, c.withDB); got != c.want {
			t.Errorf("%s: otherDatabase = %q, want %q", c.name, got, c.want)
		}
	}
}
