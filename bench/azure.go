package bench

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Limits on a trace file, checked before anything is built from it.
const (
	MaxTraceFunctions = 1 << 20
	MaxTraceMinutes   = 1440 * 14
	maxTraceLine      = 1 << 20
	maxMinuteCount    = 1 << 31
)

// Function is one row of an Azure Functions invocations file.
type Function struct {
	Owner, App, Name, Trigger string
	Counts                    []uint32 // invocations per minute, from Trace.FirstMinute
	Total                     uint64
}

// Trace is an Azure Functions 2019 invocations-per-function file: per function, invocations per
// minute. Columns are HashOwner, HashApp, HashFunction, Trigger, then one column per minute named
// by its 1-based minute of the day (the public files have 1..1440; the shipped sample 480..959).
type Trace struct {
	FirstMinute int // the first minute column's name
	Minutes     int
	Functions   []Function
}

// LoadAzure reads an invocations file.
func LoadAzure(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open the Azure trace: %w", err)
	}
	defer f.Close()
	return ParseAzure(f, path)
}

// ParseAzure parses an invocations file; name is used in errors, which give name:line and the
// column. Malformed input returns an error and never panics.
func ParseAzure(r io.Reader, name string) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxTraceLine)
	line := 0
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...))
	}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", name, err)
		}
		return nil, fmt.Errorf("%s: empty file; want a header HashOwner,HashApp,HashFunction,Trigger,<minutes...>", name)
	}
	line = 1
	hdr := strings.Split(strings.TrimRight(sc.Text(), "\r"), ",")
	want := []string{"HashOwner", "HashApp", "HashFunction", "Trigger"}
	if len(hdr) < 5 || !slices.Equal(hdr[:4], want) {
		return nil, bad("header starts %q; want %s then minute columns", strings.Join(hdr[:min(len(hdr), 4)], ","), strings.Join(want, ","))
	}
	tr := &Trace{Minutes: len(hdr) - 4}
	if tr.Minutes > MaxTraceMinutes {
		return nil, bad("%d minute columns; at most %d", tr.Minutes, MaxTraceMinutes)
	}
	for i, h := range hdr[4:] {
		m, err := strconv.Atoi(h)
		if err != nil || m < 1 || m > MaxTraceMinutes {
			return nil, bad("column %d header %q is not a minute number (1..%d)", i+5, h, MaxTraceMinutes)
		}
		if i == 0 {
			tr.FirstMinute = m
		} else if m != tr.FirstMinute+i {
			return nil, bad("column %d header %q: minutes must be consecutive (want %d)", i+5, h, tr.FirstMinute+i)
		}
	}
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" {
			continue
		}
		cols := strings.Split(text, ",")
		if len(cols) != len(hdr) {
			return nil, bad("%d columns; the header has %d", len(cols), len(hdr))
		}
		if len(tr.Functions) >= MaxTraceFunctions {
			return nil, bad("more than %d functions", MaxTraceFunctions)
		}
		f := Function{Owner: cols[0], App: cols[1], Name: cols[2], Trigger: cols[3], Counts: make([]uint32, tr.Minutes)}
		if f.Name == "" {
			return nil, bad("empty HashFunction")
		}
		for i, c := range cols[4:] {
			n, err := strconv.ParseUint(c, 10, 64)
			if err != nil || n >= maxMinuteCount {
				return nil, bad("column %d (minute %d): %q is not an invocation count (0..%d)", i+5, tr.FirstMinute+i, c, maxMinuteCount-1)
			}
			f.Counts[i] = uint32(n)
			f.Total += n
		}
		tr.Functions = append(tr.Functions, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read %s after line %d: %w", name, line, err)
	}
	if len(tr.Functions) == 0 {
		return nil, fmt.Errorf("%s: no function rows", name)
	}
	return tr, nil
}

// ReplayConfig says how a Trace becomes arrivals.
type ReplayConfig struct {
	// Models is the number of model instances. Functions, busiest first, are dealt to models
	// round-robin (function i → model i mod Models); with more models than functions, each
	// invocation goes to a uniformly random one of its function's models {i, i+F, i+2F, ...}.
	Models int
	// LoadFactor scales every count (fractions are rounded stochastically); 0 means 1.
	LoadFactor float64
	// Compression shortens time: a trace minute lasts 60 s / Compression; 0 means 1.
	Compression float64
	// StartMinute is the first minute to replay, by its column name (0: the trace's first);
	// Minutes how many (0: to the end).
	StartMinute, Minutes int
	SLONs                int64
	Seed                 uint64
}

// Replay turns tr into arrivals: each minute's count (× LoadFactor) is spread uniformly at random
// over that minute, which is a Poisson process conditioned on the count.
func Replay(tr *Trace, cfg ReplayConfig) ([]Arrival, error) {
	if cfg.Models < 1 {
		return nil, fmt.Errorf("cannot replay the trace: %d models; need at least 1", cfg.Models)
	}
	lf, comp := cfg.LoadFactor, cfg.Compression
	if lf == 0 {
		lf = 1
	}
	if comp == 0 {
		comp = 1
	}
	if lf < 0 || comp < 0 || math.IsNaN(lf+comp) || math.IsInf(lf+comp, 0) {
		return nil, fmt.Errorf("cannot replay the trace: load factor %v, compression %v; both must be > 0", lf, comp)
	}
	first := 0
	if cfg.StartMinute != 0 {
		first = cfg.StartMinute - tr.FirstMinute
		if first < 0 || first >= tr.Minutes {
			return nil, fmt.Errorf("cannot replay the trace: start minute %d is outside the trace's minutes %d..%d", cfg.StartMinute, tr.FirstMinute, tr.FirstMinute+tr.Minutes-1)
		}
	}
	n := tr.Minutes - first
	if cfg.Minutes > 0 {
		n = min(n, cfg.Minutes)
	}
	minuteNs := 60e9 / comp
	fns := make([]*Function, len(tr.Functions))
	for i := range tr.Functions {
		fns[i] = &tr.Functions[i]
	}
	slices.SortStableFunc(fns, func(a, b *Function) int { return cmp.Compare(b.Total, a.Total) })
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xa2e))
	var out []Arrival
	F := len(fns)
	for fi, f := range fns {
		copies := 1
		if cfg.Models > F {
			copies = (cfg.Models - fi + F - 1) / F
		}
		for k := range n {
			x := float64(f.Counts[first+k]) * lf
			c := int(x)
			if rng.Float64() < x-float64(c) {
				c++
			}
			for range c {
				m := fi % cfg.Models
				if copies > 1 {
					m = fi + F*rng.IntN(copies)
				}
				at := (float64(k) + rng.Float64()) * minuteNs
				out = append(out, Arrival{AtNs: int64(at), Model: int32(m), SLONs: cfg.SLONs})
			}
		}
	}
	sortArrivals(out)
	return out, nil
}

// RatePerSecond is the trace's mean invocations per second of trace time over minutes
// [start, start+n) (column names; 0 values as in ReplayConfig): the load factor that gives a
// target rate r at compression c is r / (RatePerSecond × c).
func (tr *Trace) RatePerSecond(startMinute, minutes int) float64 {
	first := 0
	if startMinute != 0 {
		first = max(0, startMinute-tr.FirstMinute)
	}
	n := tr.Minutes - first
	if minutes > 0 {
		n = min(n, minutes)
	}
	if n <= 0 {
		return 0
	}
	var sum uint64
	for _, f := range tr.Functions {
		for _, c := range f.Counts[first : first+n] {
			sum += uint64(c)
		}
	}
	return float64(sum) / (60 * float64(n))
}
