package sim

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultProfile(t *testing.T) {
	p := DefaultProfile()
	if len(p.Models) != 64 {
		t.Fatalf("default profile has %d models; the zoo table has 64 rows", len(p.Models))
	}
	m := p.Model("resnet50_v2")
	if m == nil {
		t.Fatal("resnet50_v2 missing")
	}
	// Values from clockwork.md §I, checked here so an edit of the JSON is noticed.
	if m.WeightsBytes != 102160300 || m.InputBytes != 602112 || m.OutputBytes != 4000 || m.WorkspaceBytes != 9834496 || m.LoadNs != 8320000 {
		t.Fatalf("resnet50_v2 = %+v", m)
	}
	want := map[int]int64{1: 2730000, 2: 4050000, 4: 5870000, 8: 9930000, 16: 17300000}
	for b, ns := range want {
		e, ok := m.Batch(b)
		if !ok || e.P50Ns != ns || e.P9999Ns < e.P99Ns || float64(e.P9999Ns) > float64(ns)*1.0003+1 {
			t.Fatalf("resnet50_v2 batch %d = %+v, want p50 %d", b, e, ns)
		}
	}
	if len(p.Source) == 0 {
		t.Fatal("default profile says nothing about where its numbers came from")
	}
	if _, err := p.Encode(); err != nil {
		t.Fatal(err)
	}
}

func TestProfileRoundTrip(t *testing.T) {
	p := DefaultProfile().Clone()
	p.Models[0].ModelName = "edited"
	if DefaultProfile().Models[0].ModelName == "edited" {
		t.Fatal("Clone shares models with the default")
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseProfile(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Models) != len(p.Models) || q.Models[0].ModelName != "edited" || q.Models[5].Batches[2] != p.Models[5].Batches[2] {
		t.Fatal("round trip changed the profile")
	}
}

func TestProfileBad(t *testing.T) {
	good := `{"version":1,"models":[{"name":"m","weights_bytes":10,"input_bytes":4,"output_bytes":4,"load_ns":1,"batches":[{"batch":1,"p50_ns":10,"p99_ns":11,"p9999_ns":12}]}]}`
	if _, err := ParseProfile([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"version":    strings.Replace(good, `"version":1`, `"version":2`, 1),
		"json":       good[:20],
		"no name":    strings.Replace(good, `"name":"m"`, `"name":""`, 1),
		"neg bytes":  strings.Replace(good, `"weights_bytes":10`, `"weights_bytes":-1`, 1),
		"order":      strings.Replace(good, `"p99_ns":11`, `"p99_ns":9`, 1),
		"batch 0":    strings.Replace(good, `"batch":1`, `"batch":0`, 1),
		"no batches": strings.Replace(good, `[{"batch":1,"p50_ns":10,"p99_ns":11,"p9999_ns":12}]`, `[]`, 1),
		"dup":        strings.Replace(good, `]}]}`, `]},{"name":"m","load_ns":1,"batches":[{"batch":1,"p50_ns":10,"p99_ns":11,"p9999_ns":12}]}]}`, 1),
		"desc":       strings.Replace(good, `{"batch":1,"p50_ns":10,"p99_ns":11,"p9999_ns":12}`, `{"batch":2,"p50_ns":10,"p99_ns":11,"p9999_ns":12},{"batch":1,"p50_ns":10,"p99_ns":11,"p9999_ns":12}`, 1),
	} {
		if _, err := ParseProfile([]byte(s)); !errors.Is(err, ErrBadProfile) {
			t.Errorf("%s: err = %v, want ErrBadProfile", name, err)
		}
	}
}

func FuzzParseProfile(f *testing.F) {
	f.Add([]byte(`{"version":1,"models":[{"name":"m","load_ns":1,"batches":[{"batch":1,"p50_ns":10,"p99_ns":11,"p9999_ns":12}]}]}`))
	f.Add(defaultProfileJSON[:2000])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProfile(b)
		if err != nil {
			if !errors.Is(err, ErrBadProfile) {
				t.Fatalf("error %v does not wrap ErrBadProfile", err)
			}
			return
		}
		// Whatever parses must re-encode and build programs without panicking.
		if _, err := p.Encode(); err != nil {
			t.Fatal(err)
		}
		be, _ := New(Config{GPUs: 1, Profile: p, SpinNs: 0})
		devs, _ := be.Open(0)
		for i := range p.Models {
			if _, err := devs[0].Prepare(&p.Models[i], nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestSpread(t *testing.T) {
	e := &BatchProfile{Batch: 1, P50Ns: 1000, P99Ns: 1100, P9999Ns: 1500}
	for _, c := range []struct {
		u, noise float64
		want     int64
	}{
		{0, 1, 1000}, {0.5, 1, 1000}, {0.99, 1, 1100}, {0.9999, 1, 1500}, {0.99999, 1, 1500},
		{0.745, 1, 1050}, {0.99, 0, 1000}, {0.99, 2, 1200},
	} {
		if got := spread(e, c.u, c.noise); got != c.want {
			t.Errorf("spread(u=%v, noise=%v) = %d, want %d", c.u, c.noise, got, c.want)
		}
	}
}
