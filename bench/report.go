package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/clockwork-go/clockwork/wire"
)

// Summary is a run's figures: the console table and the JSON summary.
type Summary struct {
	Requests int64 `json:"requests"` // in the workload
	Sent     int64 `json:"sent"`
	Answered int64 `json:"answered"`
	NotSent  int64 `json:"not_sent"`
	Lost     int64 `json:"lost"` // sent, never answered (connection gone)
	OK       int64 `json:"ok"`
	// WithinSLO: answered OK no later than the SLO after the scheduled send time.
	WithinSLO int64   `json:"within_slo"`
	DurationS float64 `json:"duration_s"`
	// ThroughputRPS counts OK answers per second; GoodputRPS those within their SLO.
	ThroughputRPS float64 `json:"throughput_rps"`
	GoodputRPS    float64 `json:"goodput_rps"`
	OfferedRPS    float64 `json:"offered_rps"`
	// Attainment is WithinSLO / Sent.
	Attainment float64 `json:"slo_attainment"`
	// Latency of OK answers from the scheduled send time, ms.
	LatencyMs  Percentiles      `json:"latency_ms"`
	Rejections map[string]int64 `json:"rejections"`
	// ColdStarts is the number of LOADs (−1: unknown, a remote controller).
	ColdStarts int64           `json:"cold_starts"`
	BatchMix   map[int32]int64 `json:"batch_mix"`
	Error      string          `json:"error,omitempty"`
	Hist       *Histogram      `json:"-"`
}

// Percentiles of a latency histogram, ms.
type Percentiles struct {
	P50, P99, P999, P9999, Max, Mean float64
}

// MarshalJSON names the fields as the table does.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]float64{"p50": p.P50, "p99": p.P99, "p99.9": p.P999, "p99.99": p.P9999, "max": p.Max, "mean": p.Mean})
}

func percentiles(h *Histogram) Percentiles {
	ms := func(v int64) float64 { return float64(v) / 1e6 }
	return Percentiles{P50: ms(h.Quantile(0.5)), P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)),
		P9999: ms(h.Quantile(0.9999)), Max: ms(h.Max()), Mean: h.Mean() / 1e6}
}

func (r *Result) slo(rec *Record) int64 {
	if rec.SLONs > 0 {
		return rec.SLONs
	}
	return r.DefaultSLONs
}

// Summarize computes r's Summary.
func (r *Result) Summarize() *Summary {
	s := &Summary{Requests: int64(len(r.Records)), Rejections: map[string]int64{}, BatchMix: map[int32]int64{}, ColdStarts: -1, Hist: &Histogram{}}
	for i := range r.Records {
		rec := &r.Records[i]
		switch rec.Outcome {
		case NotSent:
			s.NotSent++
			continue
		case Lost:
			s.Sent++
			s.Lost++
			continue
		}
		s.Sent++
		s.Answered++
		if rec.Status != wire.StatusOK {
			s.Rejections[rec.Status.String()]++
			continue
		}
		s.OK++
		s.BatchMix[rec.Batch]++
		lat := rec.LatencyNs()
		s.Hist.Record(lat)
		if slo := r.slo(rec); slo <= 0 || lat <= slo {
			s.WithinSLO++
		}
	}
	s.DurationS = float64(r.DurNs) / 1e9
	if s.DurationS > 0 {
		s.ThroughputRPS = float64(s.OK) / s.DurationS
		s.GoodputRPS = float64(s.WithinSLO) / s.DurationS
		s.OfferedRPS = float64(s.Sent) / s.DurationS
	}
	if s.Sent > 0 {
		s.Attainment = float64(s.WithinSLO) / float64(s.Sent)
	}
	s.LatencyMs = percentiles(s.Hist)
	if r.Loads != nil {
		s.ColdStarts = int64(len(r.Loads))
	}
	if r.Err != nil {
		s.Error = r.Err.Error()
	}
	return s
}

// WriteTable prints s as the console table.
func (s *Summary) WriteTable(w io.Writer) error {
	b := &strings.Builder{}
	row := func(k, f string, args ...any) { fmt.Fprintf(b, "  %-22s "+f+"\n", append([]any{k}, args...)...) }
	row("requests", "%d sent of %d (%d not sent, %d lost)", s.Sent, s.Requests, s.NotSent, s.Lost)
	row("duration", "%.1f s", s.DurationS)
	row("offered", "%.1f r/s", s.OfferedRPS)
	row("throughput", "%.1f r/s (answered OK)", s.ThroughputRPS)
	row("goodput", "%.1f r/s (OK within SLO)", s.GoodputRPS)
	row("SLO attainment", "%.4f%% (%d of %d sent)", 100*s.Attainment, s.WithinSLO, s.Sent)
	l := s.LatencyMs
	row("latency ms", "p50 %.2f  p99 %.2f  p99.9 %.2f  p99.99 %.2f  max %.2f", l.P50, l.P99, l.P999, l.P9999, l.Max)
	if len(s.Rejections) == 0 {
		row("rejections", "none")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Rejections)) {
		row("rejected: "+k, "%d (%.3f%%)", s.Rejections[k], 100*float64(s.Rejections[k])/float64(max(s.Sent, 1)))
	}
	if s.ColdStarts >= 0 {
		row("cold starts (LOADs)", "%d", s.ColdStarts)
	} else {
		row("cold starts (LOADs)", "unknown (remote controller)")
	}
	var mix []string
	for _, k := range slices.Sorted(maps.Keys(s.BatchMix)) {
		mix = append(mix, fmt.Sprintf("%d:%.1f%%", k, 100*float64(s.BatchMix[k])/float64(max(s.OK, 1))))
	}
	row("batch-size mix", "%s (share of OK requests)", strings.Join(mix, " "))
	if s.Error != "" {
		row("ended early", "%s", s.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes s as indented JSON.
func (s *Summary) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

// RequestTSVHeader is the request log's header line.
const RequestTSVHeader = "sched_ns\tsent_ns\tdone_ns\tlatency_ns\tslo_ns\tmodel\tstatus\tbatch\toutcome\twithin_slo\n"

// WriteRequestTSV writes one line per request (times in ns from the run's start; outcome
// answered/not_sent/lost; latency from the scheduled time).
func (r *Result) WriteRequestTSV(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(RequestTSVHeader)
	var line []byte
	for i := range r.Records {
		rec := &r.Records[i]
		line = line[:0]
		lat := int64(-1)
		if rec.Outcome != NotSent {
			lat = rec.LatencyNs()
		}
		within := rec.Outcome == Answered && rec.Status == wire.StatusOK && (r.slo(rec) <= 0 || lat <= r.slo(rec))
		for _, v := range []int64{rec.SchedNs, rec.SentNs, rec.DoneNs, lat, r.slo(rec)} {
			line = strconv.AppendInt(line, v, 10)
			line = append(line, '\t')
		}
		line = append(line, r.Models[rec.Model]...)
		line = append(line, '\t')
		if rec.Outcome == Answered {
			line = append(line, rec.Status.String()...)
		} else {
			line = append(line, '-')
		}
		line = append(line, '\t')
		line = strconv.AppendInt(line, int64(rec.Batch), 10)
		line = append(line, '\t')
		line = append(line, [...]string{"answered", "not_sent", "lost"}[rec.Outcome]...)
		line = append(line, '\t')
		line = strconv.AppendBool(line, within)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}
