package wire

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	f := AppendFrame(nil, &Cancel{RequestID: 42}, 7, NoDelta, 3)
	var h Header
	rest, err := h.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	got := Describe(&h, rest[:h.HeaderLen])
	if !strings.HasPrefix(got, "cancel") || !strings.Contains(got, "id=42 sent_ns=7 hdr=8 payload=3 | cancel req=42") {
		t.Fatalf("%q", got)
	}
	if got := Describe(&h, rest[:3]); !strings.Contains(got, "cannot decode") {
		t.Fatalf("%q", got)
	}
}
