package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/clockwork-go/clockwork"

// allowed lists, for each package path (relative to the module), the project packages it may
// import (DESIGN.md §3). A package not listed inherits the rule of its nearest listed parent,
// and may import its own subpackages. internal/... may be imported by anyone; "*" allows all.
var allowed = map[string][]string{
	"cmd":              {"*"},
	"e2e":              {"*"},
	"tools":            {"*"},
	"controller":       {"controller/sched", "wire", "alloc", "runtime/sim"},
	"controller/sched": {"wire"},
	"worker":           {"wire", "alloc", "runtime/device", "runtime/sim", "runtime/cpu", "runtime/cuda", "runtime/model"},
	"runtime/device":   {"alloc"},
	"runtime/model":    {"alloc"},
	"runtime/cuda":     {"runtime/device", "runtime/model", "alloc"},
	"runtime/cpu":      {"runtime/device", "runtime/model", "alloc"},
	"runtime/sim":      {"runtime/device", "alloc"},
	"alloc":            {},
	"wire":             {},
	"client":           {"wire"},
	"bench":            {"client", "wire"},
	"internal":         {},
}

// leaf packages read no clock, start no goroutines and never log.
var leaf = []string{"wire", "alloc", "controller/sched"}

// forbiddenCalls are clock reads and sleeps; time.Duration and friends stay allowed.
var forbiddenCalls = map[string]map[string]bool{
	"time": {"Now": true, "Since": true, "Until": true, "Sleep": true, "After": true, "AfterFunc": true,
		"Tick": true, "NewTimer": true, "NewTicker": true},
	"fmt": {"Print": true, "Printf": true, "Println": true},
}

var forbiddenImports = map[string]bool{"log": true, "log/slog": true}

type goFile struct {
	rel  string // package dir relative to the module root
	path string
	file *ast.File
}

func sourceFiles(t *testing.T) []goFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out []goFile
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "out") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		if strings.HasSuffix(f.Name.Name, "_test") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		out = append(out, goFile{rel: filepath.ToSlash(rel), path: p, file: f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("no Go files found; is the test running from internal/lint?")
	}
	return out
}

// rule returns the allowed imports for pkg and the key it came from.
func rule(pkg string) ([]string, string, bool) {
	for p := pkg; ; {
		if a, ok := allowed[p]; ok {
			return a, p, true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return nil, "", false
		}
		p = p[:i]
	}
}

func importAllowed(pkg, imp string) bool {
	if imp == pkg || strings.HasPrefix(imp, pkg+"/") || imp == "internal" || strings.HasPrefix(imp, "internal/") {
		return true
	}
	a, key, ok := rule(pkg)
	if !ok {
		return false
	}
	if imp == key || strings.HasPrefix(imp, key+"/") {
		return true
	}
	for _, x := range a {
		if x == "*" || imp == x || strings.HasPrefix(imp, x+"/") {
			return true
		}
	}
	return false
}

func TestImportDirection(t *testing.T) {
	for _, f := range sourceFiles(t) {
		if f.rel == "." {
			continue
		}
		if _, _, ok := rule(f.rel); !ok {
			t.Errorf("%s: package %s has no import rule; add it to allowed in internal/lint (DESIGN.md §3)", f.path, f.rel)
			continue
		}
		for _, is := range f.file.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			imp = strings.TrimPrefix(imp, module+"/")
			if !importAllowed(f.rel, imp) {
				t.Errorf("%s: %s must not import %s (DESIGN.md §3)", f.path, f.rel, imp)
			}
		}
	}
}

func isLeaf(rel string) bool {
	for _, l := range leaf {
		if rel == l || strings.HasPrefix(rel, l+"/") {
			return true
		}
	}
	return false
}

func TestLeafPackagesNoClockNoGoroutinesNoLogs(t *testing.T) {
	fset := token.NewFileSet()
	checked := map[string]bool{}
	for _, f := range sourceFiles(t) {
		if !isLeaf(f.rel) {
			continue
		}
		checked[f.rel] = true
		full, err := parser.ParseFile(fset, f.path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{} // local name -> import path
		for _, is := range full.Imports {
			imp, _ := strconv.Unquote(is.Path.Value)
			if forbiddenImports[imp] {
				t.Errorf("%s: leaf package %s imports %s; leaf packages never log", f.path, f.rel, imp)
			}
			name := imp[strings.LastIndexByte(imp, '/')+1:]
			if is.Name != nil {
				name = is.Name.Name
			}
			names[name] = imp
		}
		ast.Inspect(full, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: leaf package %s starts a goroutine", fset.Position(n.Pos()), f.rel)
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok {
					if bad := forbiddenCalls[names[id.Name]]; bad[n.Sel.Name] {
						t.Errorf("%s: leaf package %s uses %s.%s (no clock, no printing)", fset.Position(n.Pos()), f.rel, names[id.Name], n.Sel.Name)
					}
				}
			}
			return true
		})
	}
	var got []string
	for k := range checked {
		got = append(got, k)
	}
	sort.Strings(got)
	t.Logf("leaf packages checked: %v", got)
}

// TestRulesCatchViolations proves the checks can fail.
func TestRulesCatchViolations(t *testing.T) {
	cases := []struct {
		pkg, imp string
		ok       bool
	}{
		{"wire", "alloc", false},
		{"wire", "internal/invariants", true},
		{"controller/sched", "wire", true},
		{"controller/sched", "controller", false},
		{"worker", "runtime/sim", true},
		{"runtime/device", "worker", false},
		{"alloc", "runtime/device", false},
		{"cmd/cw", "worker", true},
		{"runtime/cuda", "runtime/cpu", false},
		{"wire/wiretest", "wire", true},
	}
	for _, c := range cases {
		if got := importAllowed(c.pkg, c.imp); got != c.ok {
			t.Errorf("importAllowed(%q, %q) = %v, want %v", c.pkg, c.imp, got, c.ok)
		}
	}
}
