package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/clockwork-go/clockwork/wire"
)

// TestScripts runs testdata/script/* in a synctest bubble per file, where sleeps are exact, so
// every printed time is deterministic. Times are relative to the file's start.
//
//	worker gpus=N                      start the worker (first command; default 1 GPU)
//	register id=I name=NAME            register a profile model (testProfile)
//	send                               one action per line, all sent at once:
//	  infer id= model= gpu= batch= earliest= latest= [input=BYTES] [synth] [nooutput]
//	  load|unload id= model= gpu= earliest= latest=
//	  clear id= gpu=N|all
//	wait                               read the answers to everything sent, print them by id
//	state                              print the worker state
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/script", func(t *testing.T, path string) {
		synctest.Test(t, func(t *testing.T) {
			clock := func() int64 { return time.Now().UnixNano() }
			t0 := clock()
			var w *Worker
			var k *ctl
			var done chan error
			ctx, cancel := context.WithCancel(context.Background())
			start := func(gpus int) {
				cfg := testConfig(gpus)
				cfg.Clock = clock
				var err error
				if w, err = New(cfg); err != nil {
					t.Fatal(err)
				}
				a, b := bufPipe()
				done = make(chan error, 1)
				go func() { done <- w.ServeConn(ctx, a) }()
				k = dialConn(t, b, clock)
			}
			pending := 0
			rel := func(ns int64) string { return time.Duration(ns - t0).String() }
			dur := func(s string) int64 {
				d, err := time.ParseDuration(s)
				if err != nil {
					t.Fatalf("bad duration %q", s)
				}
				return t0 + int64(d)
			}
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				if w == nil {
					gpus := 1
					if d.Cmd == "worker" {
						d.ScanArgs(t, "gpus", &gpus)
					}
					start(gpus)
					if d.Cmd == "worker" {
						return fmt.Sprintf("gpus=%d pages/gpu=%d", gpus, w.gpus[0].mem.total)
					}
				}
				switch d.Cmd {
				case "register":
					var id int
					var name string
					d.ScanArgs(t, "id", &id)
					d.ScanArgs(t, "name", &name)
					k.register(uint32(id), name)
					if k.info.Status != wire.StatusOK {
						return fmt.Sprintf("%s: %s", k.info.Status, k.info.Reason)
					}
					return fmt.Sprintf("ok pages=%d batches=%v", k.info.Model.WeightsPages, k.info.Model.Batches)
				case "send":
					for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
						f := strings.Fields(line)
						kv := map[string]string{}
						for _, x := range f[1:] {
							a, b, _ := strings.Cut(x, "=")
							kv[a] = b
						}
						num := func(key string) int {
							var v int
							fmt.Sscan(kv[key], &v)
							return v
						}
						win := wire.Window{ActionID: uint64(num("id")), ModelID: uint32(num("model")), GPU: uint16(num("gpu"))}
						if kv["earliest"] != "" {
							win.EarliestNs, win.LatestNs = dur(kv["earliest"]), dur(kv["latest"])
						}
						switch f[0] {
						case "infer":
							m := &wire.Infer{Window: win, Batch: uint16(num("batch"))}
							n := num("batch") * 64
							if _, ok := kv["input"]; ok {
								n = num("input")
							}
							if _, ok := kv["synth"]; ok {
								m.Flags |= wire.InferSynthInput
								n = 0
							}
							if _, ok := kv["nooutput"]; ok {
								m.Flags |= wire.InferNoOutput
							}
							k.send(m, make([]byte, n))
						case "load":
							k.send(&wire.LoadWeights{Window: win}, nil)
						case "unload":
							k.send(&wire.EvictWeights{Window: win}, nil)
						case "clear":
							g := uint16(wire.AllGPUs)
							if kv["gpu"] != "all" {
								g = uint16(num("gpu"))
							}
							k.send(&wire.ClearCache{ActionID: win.ActionID, GPU: g}, nil)
						default:
							t.Fatalf("unknown action %q", f[0])
						}
						pending++
					}
					return ""
				case "wait":
					var rs []wire.Result
					for ; pending > 0; pending-- {
						k.mustRecv(wire.TypeResult)
						rs = append(rs, k.res)
						rs[len(rs)-1].Reason = slices.Clone(k.res.Reason)
					}
					slices.SortFunc(rs, func(a, b wire.Result) int { return int(a.ActionID) - int(b.ActionID) })
					var b strings.Builder
					for _, r := range rs {
						fmt.Fprintf(&b, "%d %s %s", r.ActionID, r.Action, r.Status)
						for p, s := range r.Phases {
							if s != (wire.Span{}) {
								fmt.Fprintf(&b, " %s=%s..%s", wire.Phase(p), rel(s.StartNs), rel(s.EndNs))
							}
						}
						if r.Status != wire.StatusOK {
							fmt.Fprintf(&b, " (%s)", r.Reason)
						}
						b.WriteByte('\n')
					}
					return b.String()
				case "state":
					k.send(&wire.GetWorkerState{ActionID: 1}, nil)
					k.mustRecv(wire.TypeWorkerState)
					var b strings.Builder
					fmt.Fprintf(&b, "registered %v\n", k.state.Registered)
					for _, g := range k.state.GPUs {
						fmt.Fprintf(&b, "gpu %d: %d/%d pages free, loaded %v\n", g.GPU, g.FreePages, g.TotalPages, g.Models)
					}
					return b.String()
				}
				t.Fatalf("unknown command %q", d.Cmd)
				return ""
			})
			cancel()
			if k != nil {
				k.c.Abort()
				<-done
				w.Close()
			}
		})
	})
}
