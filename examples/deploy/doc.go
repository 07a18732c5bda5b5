// Package deploy holds working files for the engines that deliver rotated
// credentials to servers on rotor, and the tests that check them: a
// Kubernetes Deployment of examples/mcpserver reading a Secret volume (and
// a Secrets Store CSI Driver variant) with a readiness probe on its status
// endpoint, and a CronJob running examples/rotator that revokes only once
// every pod serves the new version (kubernetes/); the AWS rotation function
// of examples/awsrotation in a SAM template, with an EventBridge rule that
// sends SIGHUP to the servers through SSM after each rotation (aws/); and
// Vault Agent rendering the credentials into the files the server watches,
// with systemd units for the server and the rotator (vault-agent/).
//
// README.md describes each engine and what rotor does in it. The package
// has no code: its tests parse every file, run the commands the files name
// with the flags the files pass, and compare names (status path, metric
// names, keys, the Lambda's handler and build, the IAM actions) with what
// the code does.
package deploy
