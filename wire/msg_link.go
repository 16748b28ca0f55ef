package wire

import (
	"fmt"
	"strings"
)

// Role says which side of which link a peer is.
type Role uint8

const (
	RoleController Role = 1 // dials workers, accepts clients
	RoleWorker     Role = 2
	RoleClient     Role = 3
	RoleTool       Role = 4 // wirecat and other observers
)

func (r Role) String() string {
	switch r {
	case RoleController:
		return "controller"
	case RoleWorker:
		return "worker"
	case RoleClient:
		return "client"
	case RoleTool:
		return "tool"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ClockKind names the clock domain of a peer's wire times.
type ClockKind uint8

const (
	// ClockUnixMono: ns since the Unix epoch, read from a monotonic clock anchored to the system
	// time once at process start (as the original's util::now). It never jumps.
	ClockUnixMono ClockKind = 1
)

// HelloFlags are capability bits in a Hello.
type HelloFlags uint8

const (
	// HelloAuth: the sender has a shared secret and will answer and demand an HMAC (Auth).
	HelloAuth HelloFlags = 1 << 0
	// HelloSynthInput: a worker able to synthesise inputs (Infer with InferSynthInput).
	HelloSynthInput HelloFlags = 1 << 1

	helloFlagsKnown = HelloAuth | HelloSynthInput
)

// GPUInfo describes one GPU of a worker in its Hello.
type GPUInfo struct {
	MemBytes  uint64 // total device memory
	PageBytes uint32 // weights cache page size
	Pages     uint32 // weights cache pages
	Name      []byte // e.g. "NVIDIA H100 80GB HBM3"; at most MaxNameLen
}

// Hello is the first frame each side sends. Magic and protocol version are in its frame header;
// a peer with another version is answered with Goodbye{StatusVersionMismatch}. With HelloAuth on
// either side, both then send Auth before anything else.
type Hello struct {
	Role    Role
	Flags   HelloFlags
	Clock   ClockKind
	Nonce   [NonceSize]byte // random challenge the peer must MAC
	Agent   []byte          // software and version, e.g. "cw 0.1.0"; at most MaxAgentLen
	Backend []byte          // worker: "cuda", "cpu" or "sim"; empty otherwise
	GPUs    []GPUInfo       // worker: its GPUs; at most MaxGPUs
}

func (*Hello) Type() Type                   { return TypeHello }
func (*Hello) FrameID() uint64              { return 0 }
func (m *Hello) AppendTo(dst []byte) []byte { return AppendHello(dst, m) }

// AppendHello appends m's message header.
func AppendHello(dst []byte, m *Hello) []byte {
	dst = appendU8(dst, uint8(m.Role))
	dst = appendU8(dst, uint8(m.Flags))
	dst = appendU8(dst, uint8(m.Clock))
	dst = append(dst, m.Nonce[:]...)
	dst = appendBytes(dst, m.Agent, MaxAgentLen, "Hello.Agent")
	dst = appendBytes(dst, m.Backend, MaxNameLen, "Hello.Backend")
	if len(m.GPUs) > MaxGPUs {
		panic("BUG: wire: Hello.GPUs over MaxGPUs")
	}
	dst = appendU16(dst, uint16(len(m.GPUs)))
	for i := range m.GPUs {
		g := &m.GPUs[i]
		dst = appendU64(dst, g.MemBytes)
		dst = appendU32(dst, g.PageBytes)
		dst = appendU32(dst, g.Pages)
		dst = appendBytes(dst, g.Name, MaxNameLen, "Hello.GPUs.Name")
	}
	return dst
}

func (m *Hello) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Hello"}
	m.Role = Role(d.u8("Role"))
	if d.err == nil && (m.Role < RoleController || m.Role > RoleTool) {
		d.fail(badValue("Hello.Role", uint64(m.Role)))
	}
	m.Flags = HelloFlags(d.u8("Flags"))
	if d.err == nil && m.Flags&^helloFlagsKnown != 0 {
		d.fail(badValue("Hello.Flags", uint64(m.Flags)))
	}
	m.Clock = ClockKind(d.u8("Clock"))
	if d.err == nil && m.Clock != ClockUnixMono {
		d.fail(badValue("Hello.Clock", uint64(m.Clock)))
	}
	if d.need(NonceSize, "Nonce") {
		copy(m.Nonce[:], d.b)
		d.b = d.b[NonceSize:]
	}
	m.Agent = d.bytes(m.Agent, MaxAgentLen, "Agent")
	m.Backend = d.bytes(m.Backend, MaxNameLen, "Backend")
	n := d.count(MaxGPUs, 18, "GPUs")
	m.GPUs = grow(m.GPUs, n)
	for i := range m.GPUs {
		g := &m.GPUs[i]
		g.MemBytes = d.u64("GPUs.MemBytes")
		g.PageBytes = d.u32("GPUs.PageBytes")
		g.Pages = d.u32("GPUs.Pages")
		g.Name = d.bytes(g.Name, MaxNameLen, "GPUs.Name")
	}
	return d.b, d.err
}

func (m *Hello) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hello role=%s flags=%#x clock=%d nonce=%x agent=%s backend=%s gpus=%d", m.Role, uint8(m.Flags), m.Clock, m.Nonce[:4], quote(m.Agent), quote(m.Backend), len(m.GPUs))
	for i, g := range m.GPUs {
		fmt.Fprintf(&b, " [%d %s mem=%d page=%d pages=%d]", i, quote(g.Name), g.MemBytes, g.PageBytes, g.Pages)
	}
	return b.String()
}

// Auth answers the peer's Hello nonce: MAC = HMAC-SHA256(secret, AuthContext || sender role ||
// peer's nonce || own nonce). See ComputeMAC.
type Auth struct {
	MAC [MACSize]byte
}

func (*Auth) Type() Type                   { return TypeAuth }
func (*Auth) FrameID() uint64              { return 0 }
func (m *Auth) AppendTo(dst []byte) []byte { return AppendAuth(dst, m) }

// AppendAuth appends m's message header.
func AppendAuth(dst []byte, m *Auth) []byte { return append(dst, m.MAC[:]...) }

func (m *Auth) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Auth"}
	if d.need(MACSize, "MAC") {
		copy(m.MAC[:], d.b)
		d.b = d.b[MACSize:]
	}
	return d.b, d.err
}

func (m *Auth) String() string { return fmt.Sprintf("auth mac=%x…", m.MAC[:4]) }

// Goodbye is the last frame a side sends before closing: StatusOK for a normal close, or why it
// refuses the peer (version mismatch, unauthenticated, protocol error, shutting down).
type Goodbye struct {
	Status Status
	Reason []byte // at most MaxReasonLen
}

func (*Goodbye) Type() Type                   { return TypeGoodbye }
func (*Goodbye) FrameID() uint64              { return 0 }
func (m *Goodbye) AppendTo(dst []byte) []byte { return AppendGoodbye(dst, m) }

// AppendGoodbye appends m's message header.
func AppendGoodbye(dst []byte, m *Goodbye) []byte {
	dst = appendU16(dst, uint16(m.Status))
	return appendBytes(dst, m.Reason, MaxReasonLen, "Goodbye.Reason")
}

func (m *Goodbye) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Goodbye"}
	m.Status = d.status("Status")
	m.Reason = d.bytes(m.Reason, MaxReasonLen, "Reason")
	return d.b, d.err
}

func (m *Goodbye) String() string {
	return fmt.Sprintf("goodbye status=%s reason=%s", m.Status, quote(m.Reason))
}

// Ping asks the peer for a Pong; either side may send it. Frame headers already carry the clock
// samples, so Ping exists for liveness and for links that are otherwise idle.
type Ping struct {
	Seq uint64
}

func (*Ping) Type() Type                   { return TypePing }
func (m *Ping) FrameID() uint64            { return m.Seq }
func (m *Ping) AppendTo(dst []byte) []byte { return appendU64(dst, m.Seq) }

// AppendPing appends m's message header.
func AppendPing(dst []byte, m *Ping) []byte { return appendU64(dst, m.Seq) }

func (m *Ping) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Ping"}
	m.Seq = d.u64("Seq")
	return d.b, d.err
}

func (m *Ping) String() string { return fmt.Sprintf("ping seq=%d", m.Seq) }

// Pong answers a Ping.
type Pong struct {
	Seq        uint64
	PingSentNs int64 // the Ping frame's SentNs, echoed: the pinger's clock, so it can compute RTT
}

func (*Pong) Type() Type                   { return TypePong }
func (m *Pong) FrameID() uint64            { return m.Seq }
func (m *Pong) AppendTo(dst []byte) []byte { return AppendPong(dst, m) }

// AppendPong appends m's message header.
func AppendPong(dst []byte, m *Pong) []byte {
	dst = appendU64(dst, m.Seq)
	return appendI64(dst, m.PingSentNs)
}

func (m *Pong) Decode(src []byte) ([]byte, error) {
	d := decoder{b: src, msg: "Pong"}
	m.Seq = d.u64("Seq")
	m.PingSentNs = d.i64("PingSentNs")
	return d.b, d.err
}

func (m *Pong) String() string { return fmt.Sprintf("pong seq=%d ping_sent=%d", m.Seq, m.PingSentNs) }
