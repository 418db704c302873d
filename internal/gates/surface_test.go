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

// surfaceNames returns a package's exported API: its exported top-level
// names (types, functions, variables, constants, each constant of a block
// counted), and those plus the exported methods of its exported types and
// the exported fields and interface methods of its exported struct and
// interface types (written Type.Name).
func surfaceNames(t *testing.T, dir string) (top, all, imports []string) {
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
					top = append(top, d.Name.Name)
					all = append(all, d.Name.Name)
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
					all = append(all, id.Name+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if !s.Name.IsExported() {
							continue
						}
						top = append(top, s.Name.Name)
						all = append(all, s.Name.Name)
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
										all = append(all, s.Name.Name+"."+n.Name)
									}
								}
							}
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								top = append(top, n.Name)
								all = append(all, n.Name)
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
// network, the operating system, reflection). A name added since v0.1.0
// is not counted against the cut when testdata/middleware_added.txt lists
// it with the issue that asked for it: the list is where a new exported
// name is argued for, and growth past the cut without it fails here.
func TestSurfaceTargets(t *testing.T) {
	root := moduleRoot(t)
	tops, alls, imports := surfaceNames(t, filepath.Join(root, "middleware"))
	added := addedNames(t)
	var top, all int
	for _, n := range tops {
		if !added[n] {
			top++
		}
	}
	for _, n := range alls {
		if !added[n] {
			all++
		}
	}
	for n := range added {
		if !slices.Contains(alls, n) {
			t.Errorf("testdata/middleware_added.txt lists %s, which middleware does not export", n)
		}
	}
	t.Logf("middleware: %d top-level names, %d with methods and fields (of them %d listed as added since v0.1.0)", len(tops), len(alls), len(alls)-all)
	if top > 50 {
		t.Errorf("middleware exports %d top-level names of the v0.1.0 cut, want at most 50 (a name a later issue asks for goes in testdata/middleware_added.txt)", top)
	}
	if all > 180 {
		t.Errorf("middleware exports %d names with methods and fields of the v0.1.0 cut, want at most 180", all)
	}
	for _, banned := range []string{"go.yaml.in/yaml/v3", "gopkg.in/yaml.v3", "net/http", "net", "syscall", "reflect", "os", "encoding/json"} {
		if slices.Contains(imports, banned) {
			t.Errorf("middleware imports %s", banned)
		}
	}
}

// addedNames reads testdata/middleware_added.txt: a name (Type.Member for
// a method or field) and the issue that asked for it, per line.
func addedNames(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("testdata/middleware_added.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "issue-") {
			t.Fatalf("testdata/middleware_added.txt:%d: %q, want a name and the issue (issue-16)", i+1, line)
		}
		out[f[0]] = true
	}
	return out
}
