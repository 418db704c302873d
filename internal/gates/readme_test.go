package gates_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fence is one fenced code block of a Markdown file.
type fence struct {
	line int    // of the opening fence, from 1
	info string // the opening fence's info string: "go", "sh", ""
	body string
}

// fences returns the fenced code blocks of md, and an error for a fence left
// open at the end.
func fences(md string) ([]fence, error) {
	var (
		out  []fence
		cur  *fence
		body strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(md))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !strings.HasPrefix(line, "```") {
			if cur != nil {
				body.WriteString(line)
				body.WriteByte('\n')
			}
			continue
		}
		if cur == nil {
			cur = &fence{line: n, info: strings.TrimSpace(strings.TrimPrefix(line, "```"))}
			body.Reset()
			continue
		}
		cur.body = body.String()
		out = append(out, *cur)
		cur = nil
	}
	if cur != nil {
		return out, fmt.Errorf("the fence opened on line %d is never closed", cur.line)
	}
	return out, nil
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README's shape: its first lines give the two commands a new user
// needs, its fences pair up and each opening fence names its language (a
// bare opening fence is how a lost closing fence shows: the prose after it
// renders as code), and it names no internal issue.
func TestReadmeShape(t *testing.T) {
	md := readme(t)
	blocks, err := fences(md)
	if err != nil {
		t.Error(err)
	}
	for _, b := range blocks {
		if b.info == "" {
			t.Errorf("README.md:%d: a fence with no language: a closing fence is missing before it, or the block should say ```text", b.line)
		}
	}
	if n := strings.Count(md, "\n```"); n%2 != 0 {
		t.Errorf("README.md has %d fences, want an even number", n)
	}
	head := strings.Join(strings.SplitN(md, "\n", 12)[:min(11, strings.Count(md, "\n"))], "\n")
	for _, cmd := range []string{"make demo", "make test"} {
		if !strings.Contains(head, cmd) {
			t.Errorf("README.md's first lines do not give %q", cmd)
		}
	}
	if m := regexp.MustCompile(`(?i)\b(issue|item) #?\d+|#\d+\b`).FindAllString(md, -1); len(m) > 0 {
		t.Errorf("README.md names internal issues: %q", m)
	}
}

// readmePrelude is the file every README Go block is checked with: the
// user's own endpoints and values that the snippets take as given.
const readmePrelude = `package readme

import (
	"context"
	"io"

	"github.com/resiliencekit/resilience/endpoint"
)

var (
	ctx                                                                      = context.Background()
	embedEndpoint, chromaEndpoint, enrichEndpoint, cacheEndpoint, searchEndpoint endpoint.Endpoint
	req                                                                      any
	// factory is a go-kit sd.Factory; target a gRPC server's address.
	factory func(instance string) (endpoint.Endpoint, io.Closer, error)
	target  string
	opsToken string
)
`

// Every Go block of the README compiles. A block that starts with "package"
// is a file of its own, checked alone; any other is a snippet: its import
// declaration, if any, then either declarations or statements, which are
// checked as the body of a function, with the names of [readmePrelude]
// (embedEndpoint, ctx, ...) in scope. A snippet may leave a variable or an
// import unused (go/types reports those as soft errors); every other error
// fails the test.
func TestReadmeGoBlocksCompile(t *testing.T) {
	blocks, err := fences(readme(t))
	if err != nil {
		t.Fatal(err)
	}
	var gos []fence
	for _, b := range blocks {
		if b.info == "go" {
			gos = append(gos, b)
		}
	}
	if len(gos) == 0 {
		t.Fatal("README.md has no Go block")
	}

	fset := token.NewFileSet()
	type unit struct {
		block fence
		file  *ast.File
	}
	var units []unit
	imports := map[string]bool{"context": true, "io": true, "github.com/resiliencekit/resilience/endpoint": true}
	for _, b := range gos {
		f, err := snippetFile(fset, b)
		if err != nil {
			t.Errorf("the Go block of README.md:%d does not parse: %v", b.line, err)
			continue
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			imports[p] = true
		}
		units = append(units, unit{b, f})
	}
	imp := exportImporter(t, fset, slices.Sorted(func(yield func(string) bool) {
		for p := range imports {
			if !yield(p) {
				return
			}
		}
	}))
	for _, u := range units {
		prelude, err := parser.ParseFile(fset, "prelude.go", readmePrelude, 0)
		if err != nil {
			t.Fatal(err)
		}
		var hard []string
		conf := types.Config{Importer: imp, Error: func(err error) {
			if te, ok := err.(types.Error); ok && te.Soft {
				return
			}
			hard = append(hard, err.Error())
		}}
		files := []*ast.File{prelude, u.file}
		if u.file.Name.Name != "readme" {
			files = files[1:] // a whole file, of a package of its own
		}
		_, _ = conf.Check(u.file.Name.Name, fset, files, nil)
		for _, e := range hard {
			t.Errorf("the Go block of README.md:%d does not compile: %s", u.block.line, e)
		}
	}
}

// snippetFile parses a README Go block as a file of package readme, its
// positions those of the README's lines.
func snippetFile(fset *token.FileSet, b fence) (*ast.File, error) {
	line := fmt.Sprintf("//line README.md:%d\n", b.line+1)
	src := b.body
	if strings.HasPrefix(strings.TrimSpace(src), "package ") {
		return parser.ParseFile(fset, "README.md", line+src, 0)
	}
	// The import declaration, if any, stays at file level.
	head, rest := "", src
	if strings.HasPrefix(src, "import ") {
		end := strings.Index(src, "\n")
		if strings.HasPrefix(src, "import (") {
			end = strings.Index(src, "\n)") + 2
		}
		head, rest = src[:end], src[end:]
	}
	if f, err := parser.ParseFile(fset, "README.md", line+"package readme; "+head+rest, 0); err == nil && !onlyImports(f) {
		return f, nil // declarations
	}
	if head != "" {
		head += "; "
	}
	return parser.ParseFile(fset, "README.md", line+"package readme; "+head+"func _() {"+rest+"\n}\n", 0)
}

func onlyImports(f *ast.File) bool {
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); !ok || g.Tok != token.IMPORT {
			return false
		}
	}
	return true
}

// exportImporter returns an importer reading the export data that go list
// -export builds for pkgs and their dependencies, from this module.
func exportImporter(t *testing.T, fset *token.FileSet, pkgs []string) types.Importer {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-export", "-deps", "-json=ImportPath,Export"}, pkgs...)...)
	cmd.Dir = moduleRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -export %s: %v\n%s", strings.Join(pkgs, " "), err, stderr.String())
	}
	exports := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct{ ImportPath, Export string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok || f == "" {
			return nil, fmt.Errorf("no export data for %q (imported by a README block, but not in this module's build)", path)
		}
		return os.Open(f)
	})
}
