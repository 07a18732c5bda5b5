// Package rotate is the rotation agent: it makes a new credential, stages it
// in the secret store, sets it downstream, verifies it, promotes it, waits
// for consumers to move over, and revokes the old one. It rolls back when the
// new credential fails, keeps one rotation at a time per key across
// processes and machines, and finishes or undoes a rotation that a crashed
// agent left part-way.
//
//	agent, err := rotate.New(src, &rotate.Postgres{DSN: dsn}, consumerTTL)
//	report, err := agent.Rotate(ctx, "db-credentials")   // once
//	err = agent.Run(ctx, "db-credentials", maxAge, jitter) // on a schedule
//
// # Steps
//
// A rotation of one key goes through these steps, each recorded in the
// store (secrets.RotationRecorder) once it has taken effect:
//
//  1. started: the agent takes the key's rotation record, a lock with a
//     lease (WithLease), after checking that the current value is one the
//     target can rotate and that the downstream accepts it. Before this
//     nothing is written: bad input changes nothing.
//  2. staged: the new value (Target.Next; see PasswordPolicy, HMACKey,
//     KeyPair) is the pending version (secrets.Stager.Stage, conditional on
//     the current version). Consumers are not served it.
//  3. set: the downstream accepts it (Target.Set).
//  4. verified: a login and a probe with it succeed (Target.Verify).
//  5. promoted: it is current and the old one previous
//     (secrets.Stager.Promote, conditional on both); EventPromoted tells
//     consumers to pick it up.
//  6. overlapped: at least the overlap has passed (WithOverlap, no less
//     than 3 × the consumers' TTL) and, where the target can tell
//     (Target.InUse: PostgreSQL sessions), nothing uses the old credential
//     any more and, with WithConsumers, every consumer's status endpoint
//     reports the new version; or the deadline has passed
//     (WithOverlapDeadline), and the Agent revokes anyway, with a warning.
//  7. done: the old credential is revoked (Target.Revoke; for a JWT key, the
//     previous version is removed from the store).
//
// A failure of set or verify, or a conflict with a change made outside the
// rotation, rolls back (rolling-back, then rolled-back): the downstream is
// restored to the value that is current in the store when the rollback
// runs, read afresh and never taken from the agent's memory, and the pending
// version is discarded. Consumers never saw the new value as current.
// Rotate returns an *Error of class ErrRolledBack wrapping the cause.
//
// # Crashes and concurrency
//
// Every step is idempotent and the record says which one was done last, so
// an agent that dies anywhere leaves a record that another agent takes over
// (with a check-and-set on the record) and drives to done or rolled-back. A
// step whose effect happened but was not yet recorded is done again;
// targets are written so that this is harmless. The record lives in the
// store itself, not in an agent's memory or a local file, so the agent that
// resumes may run on another machine.
//
// One rotation at a time, and one agent acting on it at a time. What holds,
// with every duration measured on one agent's own clock (clocks that
// disagree between machines change nothing; clocks must only run at about
// the same rate):
//
//   - An agent that finds a record at a non-terminal step, whoever's it
//     is (its own owner name included: a name cannot prove that the
//     process which saved under it has stopped), changes nothing until it
//     has seen the record keep one revision for a full lease (WithLease),
//     reading it every poll interval. If the record is saved meanwhile,
//     its holder is alive and Rotate returns ErrInProgress. Two agents
//     racing to take a record both write it with check-and-set and exactly
//     one wins.
//   - The holder saves the record before each step that acts downstream
//     or on the store and at least every half lease while it waits, and
//     runs each step under a context that ends three quarters of a lease
//     after that save. So a holder that is alive but slow has stopped
//     acting a quarter of a lease before anyone may take over, and each
//     later save of a holder that was taken over is refused: it stops with
//     ErrInProgress.
//   - Within one Agent, a second Rotate of a key already being rotated
//     returns ErrInProgress at once; an Agent is safe for concurrent use.
//   - The overlap is counted from the promotion by the agent that
//     promoted, and from the takeover by an agent that takes over a
//     promoted rotation: never from a time another machine recorded, so a
//     takeover lengthens the overlap and never shortens it. The deadline
//     (WithOverlapDeadline) is counted the same way.
//
// What remains: a write already in flight when its step's context ends
// may still take effect before it stops. The quarter of the lease left
// after a step covers that for a Target that honours its context promptly
// (Postgres cancels the statement, and gives the server the deadline as
// statement_timeout and lock_timeout, so that even the statement of an
// agent that died stops by then; see WithLease for the sizes). A Target
// whose write takes effect long after its context ended can still land a
// value after another agent rolled the rotation back. And Rotation.Expires
// in the record is written for people: agents never compare it with their
// own clocks (nor use Rotation.Locked).
//
// # Consumers
//
// The overlap is a bound computed from the consumers' TTL; WithConsumers
// replaces the guess with an answer. Each server serves its Store's
// secrets.Store.StatusHandler, and the Agent, past the overlap, reads every
// one's secrets.StatusDocument each poll interval until all of them report
// the promoted version of the key as the version they serve:
//
//	agent, err := rotate.New(src, target, time.Minute, rotate.WithConsumers(rotate.Consumers{
//		Endpoints: rotate.StaticEndpoints("http://10.0.0.5:9090/status", "http://10.0.0.6:9090/status"),
//		Key:       func(string) string { return "file:///var/run/secrets/app/db.json" },
//	}))
//
// Endpoints is called at every poll (ResolvedEndpoints follows a headless
// Service's pods; a function of one's own can ask the Kubernetes API for a
// label selector); Key maps the Agent's key to the consumers' name for it;
// Version maps the promoted value to the id the consumers report, where
// they read a copy (ContentVersionOf). Why a consumer does not count (it
// cannot be reached, answers a status other than 200 or a malformed
// document, lacks the key, still serves the old version) is a
// *ConsumerError, logged at each poll; past the deadline the Agent revokes
// as it does when Target.InUse still counts sessions, with a warning that
// names those consumers.
//
// # Targets
//
// Postgres rotates a PostgreSQL role's password (single role) or a pair of
// roles used in turn (alternating), and never sends the password to the
// server in a statement: it sends a SCRAM-SHA-256 verifier computed on the
// client, as psql's \password does. JWTKey rotates a JWT signing key: its
// "set" and "verify" sign and verify with jwtkeys, and its revoke removes the
// previous version from the store once the verifiers' grace window has
// passed, which is why its overlap is that window plus 3 × the TTL
// (OverlapMinimizer). Other downstreams implement Target.
//
// # Notifications and values
//
// Every step is logged with log/slog (WithLogger) and passed to WithNotify
// functions; Webhook posts the outcome as a Slack-compatible JSON message.
// Events, logs and errors hold keys, version ids, steps and causes, never a
// value.
//
// # Time
//
// Every wait and every recorded time comes from the Agent's clock
// (WithClock), so tests drive the overlap and the schedule with a fake
// clock.
package rotate
