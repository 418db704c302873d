package gates_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// surface counts a package's exported API: its exported top-level names
// (types, functions, variables, constants, each constant of a block
// counted), and those plus the exported methods of its exported types and
// the exported fields and interface methods of its exported struct and
// interface types.
func surface(t *testing.T, dir string) (top, all int, imports []string) {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			imports = append(imports, p)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					top++
					all++
					continue
				}
				rt := d.Recv.List[0].Type
				if s, ok := rt.(*ast.StarExpr); ok {
					rt = s.X
				}
				if ix, ok := rt.(*ast.IndexExpr); ok {
					rt = ix.X
				}
				if id, ok := rt.(*ast.Ident); ok && id.IsExported() {
					all++
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						top++
						all++
						var fields *ast.FieldList
						switch tt := s.Type.(type) {
						case *ast.StructType:
							fields = tt.Fields
						case *ast.InterfaceType:
							fields = tt.Methods
						}
						if fields != nil {
							for _, fl := range fields.List {
								for _, n := range fl.Names {
									if n.IsExported() {
										all++
									}
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								top++
								all++
							}
						}
					}
				}
			}
		}
	}
	return top, all, imports
}

// TestSurfaceTargets holds middleware to the v0.1.0 cut: at most 50 exported
// top-level names and 180 names with methods and fields, and none of the
// imports that belong to other packages (the file format, HTTP, the
// network, the operating system, reflection).
func TestSurfaceTargets(t *testing.T) {
	root := moduleRoot(t)
	top, all, imports := surface(t, filepath.Join(root, "middleware"))
	t.Logf("middleware: %d top-level names, %d with methods and fields", top, all)
	if top > 50 {
		t.Errorf("middleware exports %d top-level names, want at most 50", top)
	}
	if all > 180 {
		t.Errorf("middleware exports %d names with methods and fields, want at most 180", all)
	}
	for _, banned := range []string{"go.yaml.in/yaml/v3", "gopkg.in/yaml.v3", "net/http", "net", "syscall", "reflect", "os", "encoding/json"} {
		if slices.Contains(imports, banned) {
			t.Errorf("middleware imports %s", banned)
		}
	}
}
