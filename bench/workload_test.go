package bench

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

// samplePath is the Azure Functions 2019 sample committed in the repository (testdata/).
func samplePath(t testing.TB) string {
	f := "../testdata/azure-functions-2019/invocations_per_function.sample500.min0480-0959.csv"
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("the committed Azure sample is missing: %v", err)
	}
	return f
}

// TestPoissonRates: 3 models at 100/400/1500 r/s for 20 s (40,000 expected). Counts within 4
// standard deviations of their means; inter-arrival gaps exponential (CV within 2 % of 1, mean
// within 2 % of 1/2000 s).
func TestPoissonRates(t *testing.T) {
	rates := []float64{100, 400, 1500}
	const dur = int64(20e9)
	a, err := Poisson(rates, dur, 5e6, 42)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(a, func(x, y Arrival) int { return int(x.AtNs - y.AtNs) }) {
		t.Fatal("arrivals not sorted")
	}
	counts := make([]int, len(rates))
	for _, x := range a {
		counts[x.Model]++
		if x.SLONs != 5e6 || x.AtNs < 0 || x.AtNs >= dur {
			t.Fatalf("bad arrival %+v", x)
		}
	}
	for m, r := range rates {
		want := r * 20
		if d := math.Abs(float64(counts[m]) - want); d > 4*math.Sqrt(want) {
			t.Errorf("model %d: %d arrivals, want %.0f ± %.0f", m, counts[m], want, 4*math.Sqrt(want))
		}
	}
	var sum, sq float64
	for i := 1; i < len(a); i++ {
		g := float64(a[i].AtNs - a[i-1].AtNs)
		sum += g
		sq += g * g
	}
	n := float64(len(a) - 1)
	mean := sum / n
	cv := math.Sqrt(sq/n-mean*mean) / mean
	if math.Abs(mean-0.5e6)/0.5e6 > 0.02 || math.Abs(cv-1) > 0.02 {
		t.Errorf("gaps: mean %.0f ns (want 500000 ± 2%%), CV %.3f (want 1 ± 0.02)", mean, cv)
	}
	if _, err := Poisson([]float64{-1}, dur, 0, 1); err == nil {
		t.Error("negative rate accepted")
	}
}

// TestBurstyDuty: ON 1 s / OFF 3 s means at 200 r/s while ON, over 200 s and 20 models: the
// overall rate is 200 × 1/4 = 50 r/s per model within 10 % (ON/OFF periods are few, so the
// tolerance is wide), and the per-second counts are far burstier than Poisson (CV > 1 versus
// 1/√50 ≈ 0.14).
func TestBurstyDuty(t *testing.T) {
	rates := make([]float64, 20)
	for i := range rates {
		rates[i] = 200
	}
	a, err := Bursty(rates, 1e9, 3e9, 200e9, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	perModel := float64(len(a)) / 20 / 200
	if math.Abs(perModel-50)/50 > 0.10 {
		t.Errorf("mean rate %.1f r/s per model, want 50 ± 10%%", perModel)
	}
	sec := make([]float64, 200)
	for _, x := range a {
		if x.Model == 0 {
			sec[x.AtNs/1e9]++
		}
	}
	var s, q float64
	for _, c := range sec {
		s += c
		q += c * c
	}
	m := s / 200
	if cv := math.Sqrt(q/200-m*m) / m; cv < 1 {
		t.Errorf("per-second CV %.2f; an on/off source should exceed 1", cv)
	}
}

func TestSLOSweep(t *testing.T) {
	a, _ := Poisson([]float64{1000}, 10e9, 0, 3)
	n := len(a)
	s, err := SLOSweep(a, 2e6, 1.5, 1e9, 20e6)
	if err != nil {
		t.Fatal(err)
	}
	// 2 ms × 1.5^k ≤ 20 ms for k ≤ 5 (15.2 ms); k = 6 gives 22.8 ms: the sweep ends at 6 s.
	if last := s[len(s)-1]; last.AtNs >= 6e9 || last.AtNs < 5.9e9 || len(s) >= n {
		t.Errorf("sweep ended at %d ns after %d of %d arrivals; want just before 6 s", last.AtNs, len(s), n)
	}
	for _, x := range s {
		want := int64(2e6 * math.Pow(1.5, float64(x.AtNs/1e9)))
		if x.SLONs != want {
			t.Fatalf("arrival at %d ns: SLO %d, want %d", x.AtNs, x.SLONs, want)
		}
	}
	if _, err := SLOSweep(nil, 1, 0.5, 1, 2); err == nil {
		t.Error("factor < 1 accepted")
	}
}

// TestRamp: lead-in 5 s, +1 model a second, 1000 r/s round-robin: in second k after the lead-in,
// exactly the first k+2 major models (StartActive 1 + k + 1) get requests, evenly within one.
func TestRamp(t *testing.T) {
	cfg := RampConfig{Models: 50, LeadInNs: 5e9, StepNs: 1e9, MajorRate: 1000, MinorRate: 200, DurNs: 20e9, SLONs: 1e8, Seed: 1, StartActive: 1}
	a, err := Ramp(cfg)
	if err != nil {
		t.Fatal(err)
	}
	minor := 0
	perSec := map[int64]map[int32]int{}
	for _, x := range a {
		if x.Model == 0 {
			minor++
			continue
		}
		s := x.AtNs / 1e9
		if perSec[s] == nil {
			perSec[s] = map[int32]int{}
		}
		perSec[s][x.Model]++
	}
	if math.Abs(float64(minor)-4000) > 4*math.Sqrt(4000) {
		t.Errorf("minor model: %d requests, want 4000 ± 253", minor)
	}
	for s := int64(0); s < 20; s++ {
		want := cfg.ActiveMajors(s * 1e9)
		got := perSec[s]
		if len(got) != want {
			t.Errorf("second %d: %d active majors, want %d", s, len(got), want)
		}
		lo, hi := 1<<30, 0
		for m, c := range got {
			if int(m) > want {
				t.Errorf("second %d: model %d active, only 1..%d should be", s, m, want)
			}
			lo, hi = min(lo, c), max(hi, c)
		}
		if hi-lo > 2 {
			t.Errorf("second %d: per-model counts %d..%d, want round-robin", s, lo, hi)
		}
	}
}

func TestParseAzureSample(t *testing.T) {
	tr, err := LoadAzure(samplePath(t))
	if err != nil {
		t.Fatal(err)
	}
	// Figures from the sample's README.
	var total, maxF uint64
	lowRate := 0
	for _, f := range tr.Functions {
		total += f.Total
		maxF = max(maxF, f.Total)
		if f.Total < 480 {
			lowRate++
		}
	}
	if len(tr.Functions) != 500 || tr.FirstMinute != 480 || tr.Minutes != 480 || total != 3037902 || maxF != 1915521 || lowRate != 409 {
		t.Errorf("sample: %d functions, minutes %d+%d, %d invocations, busiest %d, %d under 1/min; want 500, 480+480, 3037902, 1915521, 409",
			len(tr.Functions), tr.FirstMinute, tr.Minutes, total, maxF, lowRate)
	}
	// Replay minutes 600..609 at load factor 0.5, compressed 60× (10 s), onto 40 models.
	a, err := Replay(tr, ReplayConfig{Models: 40, LoadFactor: 0.5, Compression: 60, StartMinute: 600, Minutes: 10, SLONs: 1e8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, f := range tr.Functions {
		for _, c := range f.Counts[120:130] {
			want += float64(c) * 0.5
		}
	}
	if math.Abs(float64(len(a))-want) > 4*math.Sqrt(float64(len(tr.Functions))) {
		t.Errorf("replay: %d arrivals, want %.0f (stochastic rounding only)", len(a), want)
	}
	if a[len(a)-1].AtNs >= 10e9 {
		t.Errorf("last arrival at %d ns; 10 minutes at 60× is 10 s", a[len(a)-1].AtNs)
	}
	seen := map[int32]bool{}
	for _, x := range a {
		seen[x.Model] = true
	}
	if len(seen) != 40 {
		t.Errorf("%d of 40 models got requests", len(seen))
	}
	// More models than functions: every model has a function.
	b, _ := Replay(tr, ReplayConfig{Models: 1200, Compression: 60, StartMinute: 480, Minutes: 60, Seed: 1})
	seen = map[int32]bool{}
	for _, x := range b {
		if x.Model < 0 || x.Model >= 1200 {
			t.Fatalf("model %d out of range", x.Model)
		}
		seen[x.Model] = true
	}
	if len(seen) < 600 {
		t.Errorf("only %d of 1200 models got requests in an hour", len(seen))
	}
	if r := tr.RatePerSecond(0, 0); math.Abs(r-3037902.0/480/60) > 1e-6 {
		t.Errorf("RatePerSecond %v", r)
	}
}

func TestParseAzureBroken(t *testing.T) {
	hdr := "HashOwner,HashApp,HashFunction,Trigger,1,2,3\n"
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "t.csv: empty file"},
		{"header", "Owner,App,Function,Trigger,1\n", "t.csv:1: header starts"},
		{"minute", "HashOwner,HashApp,HashFunction,Trigger,1,x\n", "t.csv:1: column 6 header \"x\""},
		{"gap", "HashOwner,HashApp,HashFunction,Trigger,1,3\n", "minutes must be consecutive"},
		{"short row", hdr + "o,a,f,http,1,2,3\no,a,g,http,1,2\n", "t.csv:3: 6 columns; the header has 7"},
		{"count", hdr + "o,a,f,http,1,-2,3\n", "t.csv:2: column 6 (minute 2): \"-2\""},
		{"huge", hdr + "o,a,f,http,1,99999999999,3\n", "t.csv:2: column 6"},
		{"no name", hdr + "o,a,,http,1,2,3\n", "t.csv:2: empty HashFunction"},
		{"no rows", hdr, "t.csv: no function rows"},
	} {
		_, err := ParseAzure(strings.NewReader(c.in), "t.csv")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	tr, err := ParseAzure(strings.NewReader(hdr+"o,a,f,http,1,2,3\r\n\r\n"), "t.csv")
	if err != nil || tr.Functions[0].Total != 6 {
		t.Errorf("CRLF file: %v", err)
	}
}

func FuzzParseAzure(f *testing.F) {
	f.Add("HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,2\n")
	f.Add("HashOwner,HashApp,HashFunction,Trigger,480\n,,,\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ParseAzure(strings.NewReader(s), "fuzz")
		if err == nil {
			if _, err := Replay(tr, ReplayConfig{Models: 3, Compression: 1e6, Seed: 1}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSynthCalibration: 4,000 functions over 480 minutes against the sample's README figures:
// median per-function total 48 within ×1.4, p90 958 within ×1.6, share under 1/min 81.8 % ± 4
// points; bursty functions raise the p90 per-minute CV of functions ≥ 1/min above 1.5 (sample
// 2.40); hourly aggregates follow the diurnal shape (peak hour above the first hour).
func TestSynthCalibration(t *testing.T) {
	tr, err := Synth(DefaultSynth(4000, 480, 11))
	if err != nil {
		t.Fatal(err)
	}
	tot := make([]float64, len(tr.Functions))
	var cvs []float64
	low := 0
	for i, f := range tr.Functions {
		tot[i] = float64(f.Total)
		if f.Total < 480 {
			low++
			continue
		}
		var s, q float64
		for _, c := range f.Counts {
			s += float64(c)
			q += float64(c) * float64(c)
		}
		m := s / 480
		cvs = append(cvs, math.Sqrt(q/480-m*m)/m)
	}
	slices.Sort(tot)
	slices.Sort(cvs)
	med, p90 := tot[len(tot)/2], tot[len(tot)*9/10]
	lowFrac := float64(low) / float64(len(tot))
	cv90 := cvs[len(cvs)*9/10]
	if med < 48/1.4 || med > 48*1.4 || p90 < 958/1.6 || p90 > 958*1.6 || math.Abs(lowFrac-0.818) > 0.04 || cv90 < 1.5 {
		t.Errorf("synthetic: median %.0f (48), p90 %.0f (958), under 1/min %.3f (0.818), p90 CV %.2f (2.40)", med, p90, lowFrac, cv90)
	}
	// Hour totals without the 20 busiest functions (whose Poisson noise is small but whose
	// bursts would dominate): 14:00-15:00 (peak) above 08:00-09:00 by the cosine's ratio ± 5 %.
	hour := func(h int) float64 {
		var s float64
		for i := range tr.Functions {
			f := &tr.Functions[i]
			if f.Total > uint64(tot[len(tot)-20]) {
				continue
			}
			for _, c := range f.Counts[h*60 : h*60+60] {
				s += float64(c)
			}
		}
		return s
	}
	want := (1 + 0.1) / (1 + 0.1*math.Cos(2*math.Pi*(-5.5*60)/1440))
	if r := hour(6) / hour(0); math.Abs(r-want) > 0.05*want {
		t.Errorf("peak/first hour %.3f, want %.3f ± 5%%", r, want)
	}
	a, _ := Synth(DefaultSynth(50, 10, 11))
	b, _ := Synth(DefaultSynth(50, 10, 11))
	for i := range a.Functions {
		if !slices.Equal(a.Functions[i].Counts, b.Functions[i].Counts) {
			t.Fatal("same seed, different trace")
		}
	}
	if _, err := Synth(SynthConfig{Functions: 0, Minutes: 1}); err == nil {
		t.Error("0 functions accepted")
	}
}
