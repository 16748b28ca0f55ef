package sched

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// ddHarness drives a Scheduler from a datadriven script. Action ids are printed as a1, a2, ...
// in issue order so the scripts do not depend on the id encoding.
type ddHarness struct {
	s     *Scheduler
	names map[uint64]string
	ids   map[string]uint64
	next  int
}

func (h *ddHarness) name(id uint64) string {
	if n, ok := h.names[id]; ok {
		return n
	}
	h.next++
	n := fmt.Sprintf("a%d", h.next)
	h.names[id], h.ids[n] = n, id
	return n
}

func ms(ns int64) string {
	if ns == 1<<63-1 {
		return "inf"
	}
	return strconv.FormatFloat(float64(ns)/1e6, 'f', 3, 64)
}

func (h *ddHarness) print(b *strings.Builder, acts []Action) {
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case ActInfer:
			fmt.Fprintf(b, "infer %s gpu=%d model=%d batch=%d reqs=%v window=[%s,%s] exp=%s\n", h.name(a.ID), a.GPU,
				a.Model, a.Batch, a.Requests, ms(a.EarliestNs), ms(a.LatestNs), ms(a.ExpectedNs))
		case ActLoad:
			fmt.Fprintf(b, "load %s gpu=%d model=%d window=[%s,%s] exp=%s\n", h.name(a.ID), a.GPU, a.Model,
				ms(a.EarliestNs), ms(a.LatestNs), ms(a.ExpectedNs))
		case ActEvict:
			fmt.Fprintf(b, "evict %s gpu=%d model=%d\n", h.name(a.ID), a.GPU, a.Model)
		case ActRespond:
			if a.Status == StatusOK {
				fmt.Fprintf(b, "respond req=%d ok %s slot=%d\n", a.Request, h.name(a.ID), a.Slot)
			} else {
				fmt.Fprintf(b, "respond req=%d %s\n", a.Request, a.Status)
			}
		}
	}
}

func TestDatadriven(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var h *ddHarness
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			args := map[string]string{}
			for _, a := range td.CmdArgs {
				args[a.Key] = strings.Join(a.Vals, ",")
			}
			dur := func(k string) int64 {
				v, ok := args[k]
				if !ok {
					return 0
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					td.Fatalf(t, "%s: %v", k, err)
				}
				return int64(d)
			}
			num := func(k string) int64 {
				v, ok := args[k]
				if !ok {
					return 0
				}
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					td.Fatalf(t, "%s: %v", k, err)
				}
				return n
			}
			if td.Cmd == "config" || h == nil {
				cfg := DefaultConfig()
				setDur := func(k string, p *int64) {
					if _, ok := args[k]; ok {
						*p = dur(k)
					}
				}
				setDur("ahead", &cfg.ScheduleAheadNs)
				setDur("margin", &cfg.MarginNs)
				setDur("future", &cfg.FutureNs)
				setDur("late", &cfg.LateBoundNs)
				setDur("replicate", &cfg.ReplicateNs)
				setDur("pressure", &cfg.PressureNs)
				if _, ok := args["maxbatch"]; ok {
					cfg.MaxBatch = int32(num("maxbatch"))
				}
				if _, ok := args["classes"]; ok {
					cfg.Classes = int(num("classes"))
				}
				if _, ok := args["maxqueued"]; ok {
					cfg.MaxQueued = int(num("maxqueued"))
				}
				s, err := New(cfg)
				if err != nil {
					return err.Error()
				}
				h = &ddHarness{s: s, names: map[uint64]string{}, ids: map[string]uint64{}}
				if td.Cmd == "config" {
					return "ok"
				}
			}
			now := dur("t")
			ev := Event{}
			switch td.Cmd {
			case "gpu":
				ev = Event{Kind: EvAddGPU, GPU: int32(num("id")), Worker: int32(num("worker")), Pages: int32(num("pages"))}
			case "model":
				spec := &ModelSpec{ID: int32(num("id")), LoadNs: dur("load"), Pages: int32(num("pages"))}
				for _, b := range strings.Split(args["batches"], ",") {
					n, _ := strconv.Atoi(b)
					spec.Batches = append(spec.Batches, int32(n))
				}
				for _, e := range strings.Split(args["exec"], ",") {
					d, _ := time.ParseDuration(e)
					spec.ExecNs = append(spec.ExecNs, int64(d))
				}
				if err := spec.Validate(); err != nil {
					return err.Error()
				}
				ev = Event{Kind: EvAddModel, Spec: spec}
			case "submit":
				ev = Event{Kind: EvSubmit, Request: uint64(num("id")), Model: int32(num("model")),
					Class: uint8(num("class")), DeadlineNs: now + dur("slo")}
			case "cancel":
				ev = Event{Kind: EvCancel, Request: uint64(num("id"))}
			case "tick":
			case "result":
				id, ok := h.ids[args["action"]]
				if !ok {
					td.Fatalf(t, "unknown action %q", args["action"])
				}
				_, fail := args["fail"]
				end := now
				if _, ok := args["end"]; ok {
					end = dur("end")
				}
				ev = Event{Kind: EvResult, Action: id, OK: !fail, DurNs: dur("dur"), EndNs: end}
			case "worker-lost":
				ev = Event{Kind: EvWorkerLost, Worker: int32(num("worker"))}
			default:
				td.Fatalf(t, "unknown command %q", td.Cmd)
			}
			var b strings.Builder
			h.print(&b, h.s.Step(now, &ev))
			if w := h.s.WakeNs(); w != 1<<63-1 {
				fmt.Fprintf(&b, "wake %s live=%d\n", ms(w), h.s.Live())
			} else {
				fmt.Fprintf(&b, "live=%d\n", h.s.Live())
			}
			return b.String()
		})
	})
}
