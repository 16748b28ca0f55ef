package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzDecoder checks one decoder on arbitrary input: no panic; an error leaves no result (the
// caller sees only the error); a success re-encodes to exactly the bytes it consumed and decodes
// again to the same message.
func fuzzDecoder(f *testing.F, ty Type) {
	typical, boundary := examples()
	for _, e := range append(typical, boundary...) {
		if e.msg.Type() == ty && len(e.msg.AppendTo(nil)) < 8192 {
			f.Add(e.msg.AppendTo(nil))
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		m := New(ty)
		err := DecodeMessage(m, src)
		if err != nil {
			for _, s := range []error{ErrTruncated, ErrTooLong, ErrBadValue, ErrTrailing} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		enc := m.AppendTo(nil)
		if !bytes.Equal(enc, src) {
			t.Fatalf("encode(decode(b)) != b\n got %x\nwant %x", enc, src)
		}
		m2 := New(ty)
		if err := DecodeMessage(m2, enc); err != nil || m2.String() != m.String() {
			t.Fatalf("second decode: %v: %s != %s", err, m2, m)
		}
	})
}

func FuzzHeader(f *testing.F) {
	typical, _ := examples()
	for _, e := range typical {
		f.Add(AppendFrame(nil, e.msg, 1, NoDelta, 10))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var h Header
		rest, err := h.Decode(src)
		if err != nil {
			if len(rest) != len(src) {
				t.Fatal("error but input consumed")
			}
			return
		}
		if got := AppendHeader(nil, &h); !bytes.Equal(got, src[:HeaderSize]) {
			t.Fatalf("re-encode %x != %x", got, src[:HeaderSize])
		}
	})
}

func FuzzHello(f *testing.F)          { fuzzDecoder(f, TypeHello) }
func FuzzAuth(f *testing.F)           { fuzzDecoder(f, TypeAuth) }
func FuzzGoodbye(f *testing.F)        { fuzzDecoder(f, TypeGoodbye) }
func FuzzPing(f *testing.F)           { fuzzDecoder(f, TypePing) }
func FuzzPong(f *testing.F)           { fuzzDecoder(f, TypePong) }
func FuzzResult(f *testing.F)         { fuzzDecoder(f, TypeResult) }
func FuzzLoadModel(f *testing.F)      { fuzzDecoder(f, TypeLoadModel) }
func FuzzModelInfo(f *testing.F)      { fuzzDecoder(f, TypeModelInfo) }
func FuzzLoadWeights(f *testing.F)    { fuzzDecoder(f, TypeLoadWeights) }
func FuzzEvictWeights(f *testing.F)   { fuzzDecoder(f, TypeEvictWeights) }
func FuzzInfer(f *testing.F)          { fuzzDecoder(f, TypeInfer) }
func FuzzClearCache(f *testing.F)     { fuzzDecoder(f, TypeClearCache) }
func FuzzGetWorkerState(f *testing.F) { fuzzDecoder(f, TypeGetWorkerState) }
func FuzzWorkerState(f *testing.F)    { fuzzDecoder(f, TypeWorkerState) }
func FuzzListModels(f *testing.F)     { fuzzDecoder(f, TypeListModels) }
func FuzzModelList(f *testing.F)      { fuzzDecoder(f, TypeModelList) }
func FuzzRequest(f *testing.F)        { fuzzDecoder(f, TypeRequest) }
func FuzzCancel(f *testing.F)         { fuzzDecoder(f, TypeCancel) }
func FuzzResponse(f *testing.F)       { fuzzDecoder(f, TypeResponse) }

// FuzzFrameReader feeds arbitrary streams to a FrameReader: no panic, every error typed or EOF,
// and every frame it returns re-encodes to the bytes it came from.
func FuzzFrameReader(f *testing.F) {
	typical, _ := examples()
	var stream []byte
	for _, e := range typical {
		stream = AppendFrame(stream, e.msg, 5, NoDelta, 3)
		stream = append(stream, 1, 2, 3)
	}
	f.Add(stream)
	f.Add(stream[:len(stream)/2])
	f.Fuzz(func(t *testing.T, src []byte) {
		fr := NewFrameReader(bytes.NewReader(src), 64, 1<<20)
		for {
			h, err := fr.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return
				}
				for _, s := range []error{ErrTruncated, ErrTooLong, ErrBadMagic, ErrVersion, ErrUnknownType, ErrBadValue} {
					if errors.Is(err, s) {
						return
					}
				}
				t.Fatalf("untyped error %v", err)
			}
			m := New(h.Type)
			if err := fr.DecodeInto(m); err != nil {
				return
			}
			if got := m.AppendTo(nil); !bytes.Equal(got, fr.Message()) {
				t.Fatalf("%s re-encodes differently", h.Type)
			}
			p := make([]byte, h.PayloadLen/2)
			if err := fr.ReadPayload(p); err != nil {
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("payload: %v", err)
				}
				return
			}
		}
	})
}
