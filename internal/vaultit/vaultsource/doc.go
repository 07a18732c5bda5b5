// Package vaultsource holds the tests of github.com/rotorhq/rotor/sources/vault
// against a real Vault server (package vaulttest): the conformance suite for
// KV v2 and KV v1, the rules for versions, mount detection and polling cost,
// the token lifecycle (renewal, re-login at the maximum TTL, after a
// revocation) and chaos (a sealed Vault, a policy that denies). It has no
// code of its own.
package vaultsource
