package wire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// BenchmarkLoopbackHeaderOnly: one loopback TCP connection, header-only INFER frames, one sender
// goroutine and one reader (benchmark 2 of issue 3). Goal ≥ 2,000,000 frames/s.
func BenchmarkLoopbackHeaderOnly(b *testing.B) {
	a, c := connectedPair(b, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
	m := &Infer{Window: Window{ActionID: 1, ModelID: 2, EarliestNs: 1 << 60, LatestNs: 1<<60 + 1e6, ExpectedNs: 5e5}, Batch: 1}
	n := b.N
	go func() {
		for i := 0; i < n; i++ {
			m.ActionID = uint64(i)
			if err := a.Send(m, nil); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	var got Infer
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Next(); err != nil {
			b.Fatal(err)
		}
		if err := c.DecodeInto(&got); err != nil || got.ActionID != uint64(i) {
			b.Fatal(err, got.ActionID, i)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "frames/s")
}

const imageBytes = 602112 // one 224×224×3 fp32 image

// BenchmarkPayload602112 moves 602,112-byte payloads over one loopback socket pair, alternating
// a raw phase (sender writes the buffer, receiver runs io.CopyBuffer into a 602,112-byte
// buffer) and a wire phase (Send / Next / ReadPayload into the destination) on the same sockets,
// and reports both rates and their ratio (benchmark 3 of issue 3; goal ratio ≥ 0.9). The tls
// variant runs the same over TLS 1.3 (both phases through tls.Conn).
func BenchmarkPayload602112(b *testing.B) {
	for _, useTLS := range []bool{false, true} {
		name := "tcp"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			na, nb := tcpPair(b)
			if useTLS {
				na, nb = tlsWrap(b, na, nb)
			}
			a, c, ea, eb := handshakePair(b, na, nb, cfgFor(RoleController, ""), cfgFor(RoleWorker, ""))
			if ea != nil || eb != nil {
				b.Fatal(ea, eb)
			}
			startWriters(b, a, c)
			src := make([]byte, imageBytes)
			dst := make([]byte, imageBytes)
			m := &Infer{Window: Window{ActionID: 1}, Batch: 1}
			b.SetBytes(imageBytes)
			b.ReportAllocs()
			b.ResetTimer()
			var rawNs, wireNs time.Duration
			var rawBytes, wireBytes int64
			const rounds = 4
			for r := 0; r < rounds; r++ {
				k := (b.N + rounds - 1) / rounds
				// raw phase
				done := make(chan error, 1)
				go func() {
					for i := 0; i < k; i++ {
						if _, err := na.Write(src); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				t0 := time.Now()
				n, err := io.CopyBuffer(sinkWriter{}, io.LimitReader(readerOnly{nb}, int64(k)*imageBytes), dst)
				if err != nil || n != int64(k)*imageBytes {
					b.Fatal(n, err)
				}
				rawNs += time.Since(t0)
				rawBytes += n
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				// wire phase
				go func() {
					for i := 0; i < k; i++ {
						if err := a.Send(m, src); err != nil {
							done <- err
							return
						}
					}
					done <- nil
				}()
				t0 = time.Now()
				for i := 0; i < k; i++ {
					h, err := c.Next()
					if err != nil {
						b.Fatal(err)
					}
					if err := c.ReadPayload(dst[:h.PayloadLen]); err != nil {
						b.Fatal(err)
					}
				}
				wireNs += time.Since(t0)
				wireBytes += int64(k) * imageBytes
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			raw := float64(rawBytes) / rawNs.Seconds() / 1e9
			wire := float64(wireBytes) / wireNs.Seconds() / 1e9
			b.ReportMetric(raw, "raw-GB/s")
			b.ReportMetric(wire, "wire-GB/s")
			b.ReportMetric(wire/raw, "wire/raw")
		})
	}
}

type sinkWriter struct{}

func (sinkWriter) Write(p []byte) (int, error) { return len(p), nil }

// readerOnly hides WriterTo so io.CopyBuffer really uses the buffer.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }

func tlsWrap(tb testing.TB, na, nb net.Conn) (net.Conn, net.Conn) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cw-test"}, DNSNames: []string{"cw-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Client(na, &tls.Config{RootCAs: pool, ServerName: "cw-test"}),
		tls.Server(nb, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
}
