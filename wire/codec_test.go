package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

func allExamples() []example {
	t, b := examples()
	return append(t, b...)
}

func TestEveryTypeHasExamples(t *testing.T) {
	seen := map[Type]bool{}
	for _, e := range allExamples() {
		seen[e.msg.Type()] = true
	}
	for i := 0; i < 256; i++ {
		ty := Type(i)
		if ty.Valid() != (New(ty) != nil) {
			t.Errorf("%v: Valid()=%v but New returned %v", ty, ty.Valid(), New(ty))
		}
		if ty.Valid() && !seen[ty] {
			t.Errorf("%v has no example", ty)
		}
		if m := New(ty); m != nil && m.Type() != ty {
			t.Errorf("New(%v).Type() = %v", ty, m.Type())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	typical, _ := examples()
	for _, e := range allExamples() {
		t.Run(e.name, func(t *testing.T) {
			enc := e.msg.AppendTo(nil)
			fresh := New(e.msg.Type())
			if err := DecodeMessage(fresh, enc); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(fresh, e.msg) {
				t.Fatalf("decode(encode(m)) != m\n got %v\nwant %v", fresh, e.msg)
			}
			// Decoding into a message that held another value of the same type must overwrite
			// every field.
			for _, other := range typical {
				if other.msg.Type() != e.msg.Type() {
					continue
				}
				reused := New(e.msg.Type())
				if err := DecodeMessage(reused, other.msg.AppendTo(nil)); err != nil {
					t.Fatal(err)
				}
				if err := DecodeMessage(reused, enc); err != nil {
					t.Fatal(err)
				}
				if got := reused.AppendTo(nil); !bytes.Equal(got, enc) {
					t.Fatalf("reused decode after %s re-encodes differently", other.name)
				}
				if reused.String() != e.msg.String() {
					t.Fatalf("reused decode after %s: %s, want %s", other.name, reused, e.msg)
				}
			}
			// Every strict prefix is a truncation error, never a panic or a result.
			for n := 0; n < len(enc); n++ {
				err := DecodeMessage(New(e.msg.Type()), enc[:n])
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("prefix %d/%d: got %v, want ErrTruncated", n, len(enc), err)
				}
				if len(enc) > 4096 && n > 64 {
					n += len(enc) / min(97, 1+(1<<20)/len(enc)*20) // big boundary messages: 20-100 prefixes, not millions
				}
			}
			// A trailing byte is ErrTrailing.
			if err := DecodeMessage(New(e.msg.Type()), append(enc, 0)); !errors.Is(err, ErrTrailing) {
				t.Fatalf("trailing byte: got %v, want ErrTrailing", err)
			}
			// The whole frame stays under MaxHeaderLen.
			if len(enc) > MaxHeaderLen {
				t.Fatalf("%d bytes over MaxHeaderLen", len(enc))
			}
		})
	}
}

func TestFrameHeaderRoundTrip(t *testing.T) {
	for _, e := range allExamples() {
		frame := AppendFrame(nil, e.msg, -5, NoDelta, 602112)
		var h Header
		rest, err := h.Decode(frame)
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		want := Header{Version: ProtocolVersion, Type: e.msg.Type(), ID: e.msg.FrameID(), SentNs: -5, MinDeltaNs: NoDelta, HeaderLen: uint32(len(rest)), PayloadLen: 602112}
		if h != want {
			t.Fatalf("%s: header %+v, want %+v", e.name, h, want)
		}
		m := New(h.Type)
		if err := DecodeMessage(m, rest[:h.HeaderLen]); err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
	}
}

// TestGolden pins the bytes of every typical message (testdata/golden) and the errors of bad
// frames (testdata/bad). Any format change shows in review; regenerate with -rewrite.
func TestGolden(t *testing.T) {
	typical, _ := examples()
	byName := map[string]Message{}
	for _, e := range typical {
		byName[e.name] = e.msg
	}
	used := map[string]bool{}
	datadriven.RunTest(t, "testdata/golden", func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "frame":
			var name string
			td.ScanArgs(t, "name", &name)
			m, ok := byName[name]
			if !ok {
				t.Fatalf("no example %q", name)
			}
			used[name] = true
			frame := AppendFrame(nil, m, 1_700_000_000_000_000_000, 250_000, 0)
			return hexDump(frame) + m.String() + "\n"
		}
		t.Fatalf("unknown command %q", td.Cmd)
		return ""
	})
	for _, e := range typical {
		if !used[e.name] {
			t.Errorf("example %s has no golden entry in testdata/golden", e.name)
		}
	}
}

func TestBadFrames(t *testing.T) {
	datadriven.RunTest(t, "testdata/bad", func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "decode":
			src, err := hex.DecodeString(strings.Join(strings.Fields(td.Input), ""))
			if err != nil {
				t.Fatalf("bad hex: %v", err)
			}
			var h Header
			rest, err := h.Decode(src)
			if err != nil {
				return "frame header: " + classify(err) + "\n"
			}
			if uint64(len(rest)) < uint64(h.HeaderLen) {
				return fmt.Sprintf("need %d header bytes, have %d\n", h.HeaderLen, len(rest))
			}
			m := New(h.Type)
			if err := DecodeMessage(m, rest[:h.HeaderLen]); err != nil {
				return "message: " + classify(err) + "\n"
			}
			return "ok: " + m.String() + "\n"
		}
		t.Fatalf("unknown command %q", td.Cmd)
		return ""
	})
}

// classify names the sentinel an error wraps, then its text.
func classify(err error) string {
	for _, s := range []error{ErrTruncated, ErrTooLong, ErrBadMagic, ErrVersion, ErrUnknownType, ErrBadValue, ErrTrailing, ErrClosed} {
		if errors.Is(err, s) {
			return fmt.Sprintf("[%v] %v", s, err)
		}
	}
	return "[unclassified] " + err.Error()
}

func hexDump(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		fmt.Fprintf(&sb, "%04x  % x\n", i, b[i:end])
	}
	return sb.String()
}

func TestStatusStrings(t *testing.T) {
	seen := map[string]bool{}
	for s := Status(0); s < numStatus; s++ {
		n := s.String()
		if seen[n] || strings.HasPrefix(n, "status(") {
			t.Errorf("status %d: bad or duplicate name %q", s, n)
		}
		seen[n] = true
		if p, ok := ParseStatus(n); !ok || p != s {
			t.Errorf("ParseStatus(%q) = %v, %v", n, p, ok)
		}
	}
	if Status(numStatus).Valid() {
		t.Error("numStatus is valid")
	}
}

func TestValidate(t *testing.T) {
	for _, e := range allExamples() {
		if err := Validate(e.msg); err != nil {
			t.Errorf("%s: %v", e.name, err)
		}
	}
	long := make([]byte, MaxPathLen+1)
	bad := []Message{
		&Hello{Agent: long[:MaxAgentLen+1]},
		&Hello{GPUs: make([]GPUInfo, MaxGPUs+1)},
		&Hello{GPUs: []GPUInfo{{Name: long[:MaxNameLen+1]}}},
		&Goodbye{Reason: long[:MaxReasonLen+1]},
		&LoadModel{Path: long},
		&ModelInfo{Model: ModelDesc{Batches: make([]uint16, MaxBatchSizes+1)}},
		&ModelList{Models: make([]ModelDesc, MaxModels+1)},
		&WorkerState{Registered: make([]uint32, MaxModels+1)},
		&Result{Reason: long[:MaxReasonLen+1]},
		&Request{Name: long[:MaxNameLen+1]},
		&Response{Reason: long[:MaxReasonLen+1]},
	}
	for _, m := range bad {
		if err := Validate(m); !errors.Is(err, ErrTooLong) {
			t.Errorf("%s: %v, want ErrTooLong", m.Type(), err)
		}
	}
	var c Conn
	c.cfg.InlinePayload = 1
	if err := c.Send(&LoadModel{Path: long}, nil); !errors.Is(err, ErrTooLong) {
		t.Errorf("Send of a too-long path: %v", err)
	}
}
