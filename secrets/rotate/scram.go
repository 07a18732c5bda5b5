package rotate

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// scramIterations is the PBKDF2 iteration count of the verifiers the Agent
// computes: PostgreSQL's default (scram_iterations, 4096).
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier of password in the form
// PostgreSQL stores in pg_authid.rolpassword and accepts in ALTER ROLE ...
// PASSWORD: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
// (RFC 5802, RFC 7677), with a fresh 16-byte salt. The server recognises the
// form and stores it as given, so the password itself never reaches the
// server, its logs or pg_stat_statements: this is what psql's \password and
// libpq's PQencryptPasswordConn do.
//
// The password is used as given; PostgreSQL applies SASLprep to it first,
// which leaves printable ASCII (what PasswordPolicy makes) unchanged.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	return scramVerifierSalt(password, salt, scramIterations)
}

func scramVerifierSalt(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iterations) + ":" + b64(salt) + "$" + b64(storedKey[:]) + ":" + b64(serverKey), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
