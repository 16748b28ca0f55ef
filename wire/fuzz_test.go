package wire

import (
	"bytes"
	"errors"
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
