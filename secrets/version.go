package secrets

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// versionKey keys ContentVersion. It is random for each process.
var versionKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("secrets: no randomness for version ids: " + err.Error())
	}
	return k
}()

// ContentVersion returns a version id for a value, for sources whose backend
// keeps none (files, the environment): 16 hex digits of an HMAC-SHA-256 of the
// value under a key drawn at random when the process starts. Equal values get
// equal ids within a process, and different values different ids (a collision
// needs about 2³² values), but an id cannot be checked against a guessed value
// outside the process, as a plain digest of a weak password could be. Version
// ids appear in logs, statuses and change notices, so this matters.
func ContentVersion(value []byte) string {
	m := hmac.New(sha256.New, versionKey)
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil)[:8])
}
