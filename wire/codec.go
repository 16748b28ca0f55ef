package wire

import "encoding/binary"

// Little-endian primitives shared by every message codec. Appenders grow dst as append does;
// the decoder is a value on the caller's stack with a sticky error, so a message's Decode reads
// its fields straight through and checks the error once.

func appendU8(dst []byte, v uint8) []byte   { return append(dst, v) }
func appendU16(dst []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(dst, v) }
func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }
func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }
func appendI64(dst []byte, v int64) []byte  { return binary.LittleEndian.AppendUint64(dst, uint64(v)) }

// appendBytes writes a uint16 length and the bytes. The caller keeps len(b) <= max; an encoder
// never truncates silently, so a longer value is a caller bug and panics with BUG.
func appendBytes(dst []byte, b []byte, max int, field string) []byte {
	if len(b) > max {
		panic("BUG: wire: " + field + " longer than its maximum; validate before encoding")
	}
	dst = appendU16(dst, uint16(len(b)))
	return append(dst, b...)
}

// decoder reads fields from b. After the first failure every read returns zero and err keeps
// the first error.
type decoder struct {
	b   []byte
	err error
	msg string // message name for errors, e.g. "Infer"
}

func (d *decoder) need(n int, field string) bool {
	if d.err != nil {
		return false
	}
	if len(d.b) < n {
		d.err = truncated(d.msg+"."+field, n, len(d.b))
		return false
	}
	return true
}

func (d *decoder) u8(field string) uint8 {
	if !d.need(1, field) {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u16(field string) uint16 {
	if !d.need(2, field) {
		return 0
	}
	v := binary.LittleEndian.Uint16(d.b)
	d.b = d.b[2:]
	return v
}

func (d *decoder) u32(field string) uint32 {
	if !d.need(4, field) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64(field string) uint64 {
	if !d.need(8, field) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) i64(field string) int64 { return int64(d.u64(field)) }

// bytes reads a uint16-length byte string into dst[:0], reusing dst's capacity; the length is
// checked against max before anything is copied or allocated.
func (d *decoder) bytes(dst []byte, max int, field string) []byte {
	n := int(d.u16(field))
	if d.err != nil {
		return dst[:0]
	}
	if n > max {
		d.err = tooLong(d.msg+"."+field, uint64(n), uint64(max))
		return dst[:0]
	}
	if !d.need(n, field) {
		return dst[:0]
	}
	dst = append(dst[:0], d.b[:n]...)
	d.b = d.b[n:]
	return dst
}

// count reads a uint16 element count and checks it against max and against the bytes left
// (each element takes at least minSize bytes), so a hostile count cannot make the caller
// allocate more than the frame holds.
func (d *decoder) count(max, minSize int, field string) int {
	n := int(d.u16(field))
	if d.err != nil {
		return 0
	}
	if n > max {
		d.err = tooLong(d.msg+"."+field, uint64(n), uint64(max))
		return 0
	}
	if n*minSize > len(d.b) {
		d.err = truncated(d.msg+"."+field, n*minSize, len(d.b))
		return 0
	}
	return n
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// grow returns s resliced to n elements, reusing its capacity; n is already bounded by count.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
