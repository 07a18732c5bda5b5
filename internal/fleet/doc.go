// Package fleet measures what a fleet of rotor Stores costs one AWS Secrets
// Manager and how fast a rotation reaches all of them: N Stores, each with
// its own SDK client and awssm source, serving the same K secrets with TTL
// T, against the wire-protocol server of package smtest on loopback. It is
// test infrastructure, kept under internal/ beside the servers it drives:
// TestFleet runs it in the suite at sizes two busy cores can carry, and at a
// thousand Stores by a command:
//
//	go test -run '^TestFleet$' -v -timeout 2h ./internal/fleet \
//	    -fleet.n=10,100,1000 -fleet.ttl=30s -fleet.start=together,staggered
//
// # What is measured
//
// Requests are counted at the server (smtest.WithRequestLog), each tied to
// its Store by the AppID of the Store's client, which the SDK sends in the
// User-Agent. The server enforces AWS's documented quotas
// (smtest.AWSQuotas: BatchGetSecretValue 100 a second, GetSecretValue
// 10,000, DescribeSecret 40,000) and answers ThrottlingException beyond
// them, as AWS does.
//
//   - Steady polling: the mean and the peak (the most requests in one
//     1-second window, windows aligned on the start of the span) over a
//     steady window that begins after a warm-up, against the ideal rate
//     N·⌈K/20⌉/T, the least a fleet that batches can do. The peak is also
//     set against the peak that independent random phases alone would give
//     at the ideal rate (RandomPhasePeak): below about 200 requests a
//     second, the chance alone of independent phases puts the peak of a few
//     hundred windows above 1.2 × the ideal.
//   - A rotation seen by polling: a new version put at the server, and the
//     time until each Store serves it (the Store's Rotate event), as p50,
//     p99 and max over the Stores.
//   - A coordinated reload: a rotation, then one real SIGHUP to the process,
//     which every Store's ReloadOnSignal receives at once, as a fleet-wide
//     kill -HUP delivers it; then the same in a second fleet whose Stores
//     have WithReloadSpread. For each: the requests, their peak, the
//     throttled ones, the failed reloads, the convergence, and the peak of
//     the polling round that follows (a reload sets every key's next poll
//     a TTL after it, so a fleet reloaded at once polls at once next).
//
// # Start and steady state
//
// A Store schedules its first poll a TTL after its first load, less a
// random jitter of up to Jitter·T, and keeps that phase: rounds drift apart
// only by the jitter of each round, slowly. A fleet whose Stores all start
// together (Config.Stagger zero) therefore polls in step for many rounds,
// within a window of Jitter·T; one started over a TTL (a rolling restart,
// or a fleet that has run long enough) polls at random phases. The steady
// window is measured after the warm-up in both cases, and the table names
// the start. With Config.PhaseSpread every Store has
// secrets.WithPhaseSpread, which draws the phase of its first poll after
// its first load, and after a reload, uniformly within T: a fleet started or
// reloaded together then polls at random phases from its first round on.
//
// The run takes real time on the system clock, since what it measures is
// the backend's load over time; every wait for an event is bounded by a
// hang guard. On a machine whose cores are busy with other work the rates
// and times measure the machine as well as the library, so the test asserts
// counts only, and reports the goals as measured figures with pass/fail
// lines.
package fleet
