package deploy_test

import (
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// The objects the Kubernetes files create, as kubectl apply would list them.
func Example() {
	for _, file := range []string{"kubernetes/mcpserver.yaml", "kubernetes/rotator.yaml"} {
		f, err := os.Open(file)
		if err != nil {
			fmt.Println(err)
			return
		}
		dec := yaml.NewDecoder(f)
		for {
			var obj struct {
				Kind     string
				Metadata struct{ Name, Namespace string }
			}
			if dec.Decode(&obj) != nil {
				break
			}
			fmt.Printf("%s/%s %s\n", obj.Metadata.Namespace, obj.Metadata.Name, obj.Kind)
		}
		f.Close()
	}
	// Output:
	// mcp/mcpserver ServiceAccount
	// mcp/mcpserver Deployment
	// mcp/mcpserver Service
	// mcp/mcpserver-status Service
	// mcp/rotor-rotator ServiceAccount
	// mcp/rotor-rotator Role
	// mcp/rotor-rotator RoleBinding
	// mcp/rotor-rotation PersistentVolumeClaim
	// mcp/rotor-rotator CronJob
}
