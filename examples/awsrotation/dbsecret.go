package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/rotorhq/rotor/secrets"
)

// dbSecret is the part of an RDS-style database secret that the function
// reads. The document itself is kept whole (doc), so that members this
// function does not know survive a rotation.
type dbSecret struct {
	engine, host, username, password, dbname, masterARN string
	port                                                int
	ssl                                                 string // "", "true" or "false"
	doc                                                 map[string]json.RawMessage
}

// errBadSecret marks a secret this function cannot rotate. Its messages
// name members, never values.
var errBadSecret = errors.New("the secret is not an RDS PostgreSQL secret")

// parseDBSecret parses s: a JSON object with "engine" (postgres or
// aurora-postgresql), "host", "username" and "password" strings, and
// optionally "port" (number or string, default 5432), "dbname" (default
// postgres), "ssl" and "masterarn".
func parseDBSecret(s secrets.Secret) (dbSecret, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(s.Bytes(), &doc); err != nil || doc == nil {
		return dbSecret{}, fmt.Errorf("%w: version %s is not a JSON object", errBadSecret, s.Version())
	}
	d := dbSecret{doc: doc, port: 5432, dbname: "postgres"}
	str := func(name string, required bool, dst *string) error {
		raw, ok := doc[name]
		if !ok || string(raw) == "null" {
			if required {
				return fmt.Errorf("%w: version %s has no %q", errBadSecret, s.Version(), name)
			}
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil || (required && *dst == "") {
			return fmt.Errorf("%w: version %s: %q is not a non-empty string", errBadSecret, s.Version(), name)
		}
		return nil
	}
	for _, f := range []struct {
		name     string
		required bool
		dst      *string
	}{
		{"engine", true, &d.engine}, {"host", true, &d.host}, {"username", true, &d.username},
		{"password", true, &d.password}, {"dbname", false, &d.dbname}, {"masterarn", false, &d.masterARN},
	} {
		if err := str(f.name, f.required, f.dst); err != nil {
			return dbSecret{}, err
		}
	}
	if d.engine != "postgres" && d.engine != "aurora-postgresql" {
		return dbSecret{}, fmt.Errorf("%w: version %s: engine must be postgres or aurora-postgresql", errBadSecret, s.Version())
	}
	if raw, ok := doc["port"]; ok {
		var n json.Number
		var ps string
		switch {
		case json.Unmarshal(raw, &n) == nil:
			ps = n.String()
		case json.Unmarshal(raw, &ps) == nil:
		}
		p, err := strconv.Atoi(ps)
		if err != nil || p < 1 || p > 65535 {
			return dbSecret{}, fmt.Errorf("%w: version %s: \"port\" is not a port number", errBadSecret, s.Version())
		}
		d.port = p
	}
	if raw, ok := doc["ssl"]; ok {
		var b bool
		var bs string
		switch {
		case json.Unmarshal(raw, &b) == nil:
			d.ssl = strconv.FormatBool(b)
		case json.Unmarshal(raw, &bs) == nil:
			d.ssl = strings.ToLower(bs)
		}
	}
	return d, nil
}

// dsn is the connection string of d's database, without credentials (the
// target fills them from the secret). sslmode follows the secret's "ssl"
// member (true: verify-full, false: disable) and defaults to def.
func (d dbSecret) dsn(def string) string {
	mode := def
	switch d.ssl {
	case "true":
		mode = "verify-full"
	case "false":
		mode = "disable"
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(d.host, strconv.Itoa(d.port)), Path: "/" + d.dbname,
		RawQuery: url.Values{"sslmode": {mode}, "connect_timeout": {"5"}}.Encode()}
	return u.String()
}

// adminDSN is dsn with d's own credentials: the master secret's.
func (d dbSecret) adminDSN(def string) string {
	u, _ := url.Parse(d.dsn(def))
	u.User = url.UserPassword(d.username, d.password)
	return u.String()
}

// otherDatabase names the first of the server's coordinates in which o
// differs from d ("host", "port", "engine", "dbname"), or returns "" when
// they name the same database. Hosts compare without case, as DNS names
// do. The engines compare as families: postgres and aurora-postgresql are
// both PostgreSQL, and RDS writes either for an Aurora PostgreSQL cluster;
// parseDBSecret accepts no other. dbname is compared only when withDB is
// set: a master secret's dbname is replaced by the user's, as AWS's
// template does.
func (d dbSecret) otherDatabase(o dbSecret, withDB bool) string {
	switch {
	case !strings.EqualFold(d.host, o.host):
		return "host"
	case d.port != o.port:
		return "port"
	case pgFamily(d.engine) != pgFamily(o.engine):
		return "engine"
	case withDB && d.dbname != o.dbname:
		return "dbname"
	}
	return ""
}

// pgFamily maps the engines parseDBSecret accepts to one family.
func pgFamily(engine string) string {
	if engine == "postgres" || engine == "aurora-postgresql" {
		return "postgres"
	}
	return engine
}

// with returns d's document with username and password replaced.
func (d dbSecret) with(username, password string) ([]byte, error) {
	doc := make(map[string]json.RawMessage, len(d.doc))
	for k, v := range d.doc {
		doc[k] = v
	}
	doc["username"], _ = json.Marshal(username)
	doc["password"], _ = json.Marshal(password)
	return json.Marshal(doc)
}

// cloneSuffix names the other user of the alternating scheme, as AWS's
// multi-user templates do: "app" and "app_clone".
const cloneSuffix = "_clone"

// altUsername returns the other user of the alternating pair.
func altUsername(user string) (string, error) {
	if base, ok := strings.CutSuffix(user, cloneSuffix); ok {
		return base, nil
	}
	if len(user)+len(cloneSuffix) > 63 {
		return "", fmt.Errorf("%w: the username with %q appended is over PostgreSQL's 63 characters", errBadSecret, cloneSuffix)
	}
	return user + cloneSuffix, nil
}
