package kvsource_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	kvsource "example.com/thirdpartysource"
	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness changes the Service behind the source, as an operator would.
type harness struct{ svc *kvsource.Service }

func (h harness) Key(name string) string { return "team/" + name }

func (h harness) Set(_ context.Context, name, value string) error {
	h.svc.Put(h.Key(name), value)
	return nil
}

func (h harness) Delete(_ context.Context, name string) error {
	h.svc.Delete(h.Key(name))
	return nil
}

// TestConformance runs rotor's conformance suite on the source, as any
// third-party source does.
func TestConformance(t *testing.T) {
	sourcetest.Run(t, sourcetest.Config{
		New: func(t *testing.T) (secrets.Source, sourcetest.Harness) {
			svc := kvsource.NewService()
			return kvsource.New(svc), harness{svc}
		},
		KeepsPrevious: true,
	})
}
