package errdefs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"
)

// Classes (and so the HTTP table and the SDK's re-exports, tested against
// it) must list every sentinel declared in errdefs.go; a class added to the
// var block alone would silently map to 500 and be missing from the SDK.
func TestClassesListsEveryClass(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errdefs.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				if strings.HasPrefix(n.Name, "Err") {
					declared = append(declared, n.Name)
				}
			}
		}
	}
	if len(declared) != len(Classes()) {
		t.Fatalf("errdefs.go declares %d classes %v, Classes() lists %d: add the new class to classTable", len(declared), declared, len(Classes()))
	}
	seen := map[error]bool{}
	for _, c := range Classes() {
		if seen[c] {
			t.Errorf("Classes() lists %q twice", c)
		}
		seen[c] = true
	}
}
