package vaultsource_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/rotorhq/rotor/internal/vaultit/vaulttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, vaulttest.GoleakOptions()...)
}
