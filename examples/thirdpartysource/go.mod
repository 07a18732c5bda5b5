module example.com/thirdpartysource

go 1.26.0

require (
	github.com/rotorhq/rotor v0.0.0
	go.uber.org/goleak v1.3.0
)

require golang.org/x/sync v0.24.0 // indirect

replace github.com/rotorhq/rotor => ../..
