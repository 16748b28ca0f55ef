package probe

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestStoreExplain drives the user-space half (per-thread histories, Worst, Explain) with
// synthetic episodes; no kernel needed. Commands:
//
//	new history=N
//	register tid=N label=L | unregister tid=N
//	episode tid=N kind=K start=S end=E [cpu=C other=PID comm=NAME irq=I name=N addr=A kernel]
//	explain tid=N start=S end=E [after=A] -> the one-line text and the time per cause (only
//	                              episodes ending at A or later with after)
//	worst n=N                     -> the longest episodes
func TestStoreExplain(t *testing.T) {
	var p *Probes
	datadriven.RunTest(t, "testdata/store", func(t *testing.T, d *datadriven.TestData) string {
		tid := 0
		if d.HasArg("tid") {
			d.ScanArgs(t, "tid", &tid)
		}
		switch d.Cmd {
		case "new":
			h := 0
			d.ScanArgs(t, "history", &h)
			p = &Probes{cfg: Config{History: h}, threads: map[int]*thread{}}
			return ""
		case "register":
			var label string
			d.ScanArgs(t, "label", &label)
			p.threads[tid] = &thread{label: label}
			return ""
		case "unregister":
			delete(p.threads, tid)
			return ""
		case "episode":
			e := Episode{TID: tid}
			var kind string
			d.ScanArgs(t, "kind", &kind)
			for k, name := range kindNames {
				if name == kind {
					e.Kind = Kind(k)
				}
			}
			d.ScanArgs(t, "start", &e.StartNs)
			d.ScanArgs(t, "end", &e.EndNs)
			d.MaybeScanArgs(t, "cpu", &e.CPU)
			d.MaybeScanArgs(t, "other", &e.OtherPID)
			d.MaybeScanArgs(t, "comm", &e.Other)
			d.MaybeScanArgs(t, "irq", &e.IRQ)
			d.MaybeScanArgs(t, "name", &e.Name)
			d.MaybeScanArgs(t, "addr", &e.Addr)
			e.Kernel = d.HasArg("kernel")
			p.mu.Lock()
			p.store(&e)
			p.mu.Unlock()
			return ""
		case "explain":
			var s, e int64
			d.ScanArgs(t, "start", &s)
			d.ScanArgs(t, "end", &e)
			x := p.Explain(tid, s, e)
			if d.HasArg("after") {
				var after int64
				d.ScanArgs(t, "after", &after)
				x = x.Filter(func(e *Episode) bool { return e.EndNs >= after })
			}
			return fmt.Sprintf("%q\nepisodes=%d preempted=%v runqueue=%v blocked=%v irq=%v softirq=%v faults=%d\n",
				x.String(), len(x.Episodes), x.Preempted, x.RunQueue, x.Blocked, x.IRQ, x.SoftIRQ, x.Faults)
		case "worst":
			n := 0
			d.ScanArgs(t, "n", &n)
			var sb strings.Builder
			for _, e := range p.Worst(n) {
				fmt.Fprintf(&sb, "%v tid %d: %s\n", e.Duration(), e.TID, e.String())
			}
			return sb.String()
		}
		d.Fatalf(t, "unknown command %s", d.Cmd)
		return ""
	})
}
