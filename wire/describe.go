package wire

import "fmt"

// Describe returns one readable line for a frame: its header fields and its decoded message (or
// why the message does not decode). For tools (wirecat) and tests; it allocates.
func Describe(h *Header, msg []byte) string {
	s := fmt.Sprintf("%-16s id=%d sent_ns=%d hdr=%d payload=%d", h.Type, h.ID, h.SentNs, h.HeaderLen, h.PayloadLen)
	if h.MinDeltaNs != NoDelta {
		s += fmt.Sprintf(" min_delta_ns=%d", h.MinDeltaNs)
	}
	m := New(h.Type)
	if m == nil {
		return s + " | unknown type"
	}
	if err := DecodeMessage(m, msg); err != nil {
		return s + " | cannot decode: " + err.Error()
	}
	return s + " | " + m.String()
}
