package jwtkeys_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package's own imports to the standard library,
// golang-jwt and package secrets: the MCP SDK belongs in jwtkeys/mcpauth.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case !strings.Contains(path, "."): // standard library
			case path == "github.com/golang-jwt/jwt/v5", path == "github.com/rotorhq/rotor/secrets":
			default:
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
