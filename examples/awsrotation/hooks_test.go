package main

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// hookClient is the SDK client with hooks before some calls, to stop an
// invocation at a chosen point (as a slow or timed-out Lambda is stopped).
type hookClient struct {
	*secretsmanager.Client
	beforeGet    func(ctx context.Context, in *secretsmanager.GetSecretValueInput) error
	beforeUpdate func(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput) error
}

func (h *hookClient) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if h.beforeGet != nil {
		if err := h.beforeGet(ctx, in); err != nil {
			return nil, err
		}
	}
	return h.Client.GetSecretValue(ctx, in, o...)
}

func (h *hookClient) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, o ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	if h.beforeUpdate != nil {
		if err := h.beforeUpdate(ctx, in); err != nil {
			return nil, err
		}
	}
	return h.Client.UpdateSecretVersionStage(ctx, in, o...)
}

// hooked returns a second Rotator of e's scheme over hc (e's server).
func (e env) hooked(t *testing.T, scheme string, hc *hookClient) *Rotator {
	t.Helper()
	hc.Client = e.srv.Client()
	r, err := newRotator(hc, func(k string) string {
		if k == "ROTATION_SCHEME" {
			return scheme
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Log = nil
	return r
}

func handle(ctx context.Context, r *Rotator, arn, token, step string) error {
	return r.Handle(ctx, eventFor(arn, token, step))
}

func eventFor(arn, token, step string) events.SecretsManagerSecretRotationEvent {
	return events.SecretsManagerSecretRotationEvent{SecretID: arn, ClientRequestToken: token, Step: step}
}
