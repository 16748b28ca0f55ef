package model

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestPasses runs testdata/passes: `optimize model=M`, `specialize model=M batch=B` and
// `plan model=M batch=B page=P` print the graph (and the placement of every value) after the
// pass, so a change in folding, fusion or memory planning shows up as a diff
// (go test -run TestPasses -rewrite).
func TestPasses(t *testing.T) {
	models := map[string]func() *onnxBuilder{"tiny": tinyCNN, "fuse": fuseModel}
	datadriven.RunTest(t, "testdata/passes", func(t *testing.T, d *datadriven.TestData) string {
		var name string
		d.ScanArgs(t, "model", &name)
		mk, ok := models[name]
		if !ok {
			d.Fatalf(t, "unknown model %q", name)
		}
		g, err := Parse(name, mk().bytes(), nil)
		if err != nil {
			return err.Error()
		}
		batch := 1
		if d.HasArg("batch") {
			d.ScanArgs(t, "batch", &batch)
		}
		switch d.Cmd {
		case "optimize":
			o, err := Optimize(g)
			if err != nil {
				return err.Error()
			}
			return o.String()
		case "specialize":
			o, err := Optimize(g)
			if err == nil {
				o, err = Specialize(o, batch)
			}
			if err != nil {
				return err.Error()
			}
			return o.String()
		case "plan":
			page := int64(4096)
			if d.HasArg("page") {
				d.ScanArgs(t, "page", &page)
			}
			m, err := Build(g, []int{batch}, page)
			if err != nil {
				return err.Error()
			}
			p := m.Plans[0]
			if err := p.Check(); err != nil {
				return err.Error()
			}
			var b strings.Builder
			fmt.Fprintf(&b, "batch %d: workspace %d bytes, activations %d bytes, weights %d bytes in %d pages\n", p.Batch, p.WorkspaceBytes, p.ActivationBytes, m.Layout.Bytes, m.Layout.Pages)
			for i, v := range p.Graph.Values {
				pl := p.Place[i]
				where := [...]string{"workspace", "weights", "input", "output", "host"}[pl.Loc]
				switch pl.Loc {
				case InWorkspace:
					fmt.Fprintf(&b, "%s %v%v: workspace [%d, +%d)\n", v.Name, v.DType, v.Shape, pl.Offset, v.Bytes())
				case InWeights:
					fmt.Fprintf(&b, "%s %v%v: page %d offset %d\n", v.Name, v.DType, v.Shape, pl.Page, pl.Offset)
				default:
					fmt.Fprintf(&b, "%s %v%v: %s\n", v.Name, v.DType, v.Shape, where)
				}
			}
			return b.String()
		}
		d.Fatalf(t, "unknown command %q", d.Cmd)
		return ""
	})
}
