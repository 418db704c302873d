package gates_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot returns the directory of this module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", dir, err)
	}
	return dir
}

// TestEveryPackageRunsGoleak checks the leak gate: every directory of this
// module with test files has a TestMain that calls goleak.VerifyTestMain, so
// that no test in the module can leave a goroutine behind unnoticed.
// Directories with a go.mod of their own (bench/) are other modules and
// are skipped, as are testdata directories.
func TestEveryPackageRunsGoleak(t *testing.T) {
	root := moduleRoot(t)
	var checked int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		tests, _ := filepath.Glob(filepath.Join(path, "*_test.go"))
		if len(tests) == 0 {
			return nil
		}
		checked++
		rel, _ := filepath.Rel(root, path)
		if !hasGoleakMain(t, tests) {
			t.Errorf("%s: no TestMain calling goleak.VerifyTestMain", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 6 {
		t.Errorf("checked %d packages, want at least 6: is the walk broken?", checked)
	}
	t.Logf("%d packages run goleak in TestMain", checked)
}

// hasGoleakMain reports whether one of files declares TestMain with a call
// to goleak.VerifyTestMain.
func hasGoleakMain(t *testing.T, files []string) bool {
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "TestMain" || fn.Recv != nil || fn.Body == nil {
				continue
			}
			found := false
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "VerifyTestMain" {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "goleak" {
						found = true
					}
				}
				return !found
			})
			if found {
				return true
			}
		}
	}
	return false
}
