package rotate_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rotorhq/rotor/secrets"
	"github.com/rotorhq/rotor/secrets/rotate"
	"github.com/rotorhq/rotor/sources/memory"
)

// apiKeys is a downstream that accepts one API key at a time: a toy Target.
type apiKeys struct{ accepted string }

func (d *apiKeys) Check(_ context.Context, cur secrets.Secret) error {
	if cur.Reveal() != d.accepted {
		return fmt.Errorf("%w: key refused", rotate.ErrNotRotatable)
	}
	return nil
}
func (d *apiKeys) Next(context.Context, secrets.Secret) ([]byte, error) {
	pw, err := rotate.PasswordPolicy{Length: 24, Classes: []string{rotate.Lower, rotate.Digits}}.Password()
	return []byte(pw), err
}
func (d *apiKeys) Set(_ context.Context, _, p secrets.Secret) (map[string]string, error) {
	d.accepted = p.Reveal()
	return nil, nil
}
func (d *apiKeys) Verify(_ context.Context, p secrets.Secret) error {
	if p.Reveal() != d.accepted {
		return fmt.Errorf("refused")
	}
	return nil
}
func (d *apiKeys) Restore(_ context.Context, c, _ secrets.Secret) error {
	d.accepted = c.Reveal()
	return nil
}
func (d *apiKeys) InUse(context.Context, secrets.Secret, secrets.Secret, map[string]string) (int, error) {
	return -1, nil
}
func (d *apiKeys) Revoke(context.Context, secrets.Secret, secrets.Secret, map[string]string) error {
	return nil
}

func Example() {
	src := memory.New()
	src.Set("api-key", "first-key")
	downstream := &apiKeys{accepted: "first-key"}

	var steps []string
	agent, err := rotate.New(src, downstream, time.Millisecond,
		rotate.WithLogger(quiet()),
		rotate.WithNotify(func(_ context.Context, e rotate.Event) {
			if e.Kind == rotate.EventStep {
				steps = append(steps, string(e.Rotation.Step))
			}
		}))
	if err != nil {
		panic(err)
	}
	rep, err := agent.Rotate(context.Background(), "api-key")
	if err != nil {
		panic(err)
	}
	v, _ := src.Fetch(context.Background(), "api-key")
	fmt.Println("steps:", strings.Join(steps, " "))
	fmt.Println("current is the new version:", v.Current.Version() == rep.To)
	fmt.Println("previous:", v.Previous.Reveal())
	fmt.Println("downstream agrees:", downstream.accepted == v.Current.Reveal())
	// Output:
	// steps: started staged set verified promoted overlapped done
	// current is the new version: true
	// previous: first-key
	// downstream agrees: true
}

// ExamplePasswordPolicy makes a password without the characters that a
// connection string would need escaped.
func ExamplePasswordPolicy() {
	pw, err := rotate.PasswordPolicy{Length: 20, Exclude: rotate.DefaultExclude + ":/@?#&="}.Password()
	if err != nil {
		panic(err)
	}
	fmt.Println(len(pw), strings.ContainsAny(pw, ":/@?#&= "))
	// Output: 20 false
}
