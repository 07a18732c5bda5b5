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
//   - [github.com/rotorhq/rotor/sources/awssm] and [github.com/rotorhq/rotor/sources/vault]:
//     AWS Secrets Manager (AWSCURRENT and AWSPREVIOUS, batched polling) and
//     HashiCorp Vault KV v2 and v1 (versions n and n-1, token renewal).
//   - [github.com/rotorhq/rotor/jwtkeys]: a JWT verifier that accepts the
//     current key and, for a grace window after a rotation, the previous one;
//     a signer that uses the current one; jwtkeys/mcpauth plugs the verifier
//     into the MCP Go SDK's bearer-token middleware.
//
// For MCP servers, secrets.WrapTool gives each tool call one consistent view
// of its credentials and retries once after an authentication failure, and
// secrets.NewTransport puts a rotating API key on outgoing requests. The
// program in examples/mcpserver puts it all together.
//
// Start with the secrets package's overview and examples.
package rotor
