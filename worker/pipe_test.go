package worker

import (
	"io"
	"net"
	"sync"
	"time"
)

// bufPipe is an in-memory, buffered, full-duplex net.Conn pair built on channels, so both
// sides can write their hello at once (net.Pipe is synchronous and deadlocks there) and a
// synctest bubble sees blocked readers as durably blocked. Deadlines are ignored.
func bufPipe() (net.Conn, net.Conn) {
	ab, ba := make(chan []byte, 4096), make(chan []byte, 4096)
	done := make(chan struct{})
	var once sync.Once
	closeBoth := func() { once.Do(func() { close(done) }) }
	return &pipeEnd{rx: ba, tx: ab, done: done, close: closeBoth}, &pipeEnd{rx: ab, tx: ba, done: done, close: closeBoth}
}

type pipeEnd struct {
	rx, tx chan []byte
	done   chan struct{}
	close  func()
	rest   []byte
}

func (p *pipeEnd) Read(b []byte) (int, error) {
	if len(p.rest) == 0 {
		select {
		case p.rest = <-p.rx:
		case <-p.done:
			select {
			case p.rest = <-p.rx:
			default:
				return 0, io.EOF
			}
		}
	}
	n := copy(b, p.rest)
	p.rest = p.rest[n:]
	return n, nil
}

func (p *pipeEnd) Write(b []byte) (int, error) {
	c := append([]byte(nil), b...)
	select {
	case <-p.done:
		return 0, net.ErrClosed
	default:
	}
	select {
	case p.tx <- c:
		return len(b), nil
	case <-p.done:
		return 0, net.ErrClosed
	}
}

func (p *pipeEnd) Close() error                       { p.close(); return nil }
func (p *pipeEnd) LocalAddr() net.Addr                { return pipeAddr{} }
func (p *pipeEnd) RemoteAddr() net.Addr               { return pipeAddr{} }
func (p *pipeEnd) SetDeadline(t time.Time) error      { return nil }
func (p *pipeEnd) SetReadDeadline(t time.Time) error  { return nil }
func (p *pipeEnd) SetWriteDeadline(t time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
