// Package wire is what the drill's programs tell each other on their standard
// output, one JSON object a line: the load client a record of each tool call,
// the rotator a record of each rotation. None of it holds a credential.
package wire

import "time"

// Environment variables that carry what must stay off a command line.
const (
	// TokenEnv holds the load client's bearer token.
	TokenEnv = "ROTOR_DRILL_TOKEN"
	// AdminURLEnv holds the rotator's database superuser URL.
	AdminURLEnv = "ROTOR_DRILL_ADMIN_URL"
)

// Call is one tool call the load client made.
type Call struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Burst is set for the calls sent together to make the server's pool
	// open connections beyond the one the steady load keeps busy.
	Burst bool `json:"burst,omitempty"`
	// Err is why the call failed, "" when it succeeded: an error of the
	// client or of the transport, or the tool's error result.
	Err string `json:"err,omitempty"`
	// User, PID and SessionStart say which database session served a call
	// that succeeded (the db_whoami tool's output).
	User         string    `json:"user,omitempty"`
	PID          int32     `json:"pid,omitempty"`
	SessionStart time.Time `json:"session_start,omitzero"`
}

// LoadSummary is the load client's last line.
type LoadSummary struct {
	// Unsent counts the steady calls that were due but could not be sent:
	// every worker was busy and the queue full.
	Unsent int64 `json:"unsent"`
}

// Rotation is what the rotator did, with the times it did it.
type Rotation struct {
	Role   string    `json:"role"`   // the role whose password changed
	Stored time.Time `json:"stored"` // the new password replaced the stored one
	// Altered is when ALTER ROLE returned; AlteredDB is the database's
	// clock just after it, comparable with Call.SessionStart: a session
	// that started later logged in with the new password.
	Altered   time.Time `json:"altered"`
	AlteredDB time.Time `json:"altered_db"`
	Signalled time.Time `json:"signalled,omitzero"` // SIGHUP sent; zero for none
}
