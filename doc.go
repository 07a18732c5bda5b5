// Package rotor lets a long-running Go server rotate its credentials without a
// restart and without a failed request.
//
// Servers, MCP servers among them, usually read database passwords, API keys
// and signing keys once with os.Getenv at start-up; when the credential
// rotates in AWS Secrets Manager or Vault nothing changes until a restart, and
// revoking the old one breaks every request in flight. rotor replaces those
// reads with a Store that keeps every credential current:
//
//	store, err := secrets.New(nil,
//		secrets.WithSource("file", fileSource),
//		secrets.WithSource("awssm", awsSource),
//		secrets.WithValidator(tryLogin, "awssm://prod/db#password"),
//	)
//	...
//	pw, err := store.Get(ctx, "awssm://prod/db#password") // lock-free once loaded
//
// The packages:
//
//   - [github.com/rotorhq/rotor/secrets]: the Store, the Secret type, the
//     Source contract, validators, reload and SIGHUP, change subscriptions.
//   - [github.com/rotorhq/rotor/sources/memory], [github.com/rotorhq/rotor/sources/env]
//     and [github.com/rotorhq/rotor/sources/file]: local sources (files cover
//     Kubernetes secret volumes, the CSI driver and Vault Agent output).
//
// Start with the secrets package's overview and examples.
package rotor
