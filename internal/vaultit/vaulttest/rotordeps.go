//go:build rotordeps

// This file is compiled by no build: nothing sets the rotordeps tag. It exists
// for `go mod tidy`, which reads files of every build tag, so that this
// module's go.mod keeps requiring github.com/rotorhq/rotor (replaced by ../..)
// and resolves the library's requirements together with Vault's. Delete it
// once a compiled file of this module imports a rotor package.

package vaulttest

import _ "github.com/rotorhq/rotor/secrets"
