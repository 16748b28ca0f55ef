package wire

import (
	"math/rand/v2"
	"testing"
)

// TestClockSyncEstimate simulates two clocks with a known offset and random one-way latencies
// (asymmetric minimum) and checks the estimate lies within its own error bound of the truth.
func TestClockSyncEstimate(t *testing.T) {
	const offset = 123_456_789 // local − peer
	rng := rand.New(rand.NewPCG(1, 2))
	var local, peer ClockSync
	peerNow := int64(1_000_000_000)
	for i := 0; i < 5000; i++ {
		peerNow += 10_000
		// peer → local, latency ≥ 20 µs
		h := Header{SentNs: peerNow, MinDeltaNs: peer.LocalMinDelta()}
		local.Observe(&h, peerNow+offset+20_000+rng.Int64N(50_000))
		// local → peer, latency ≥ 30 µs
		localNow := peerNow + offset + 5_000
		h2 := Header{SentNs: localNow, MinDeltaNs: local.LocalMinDelta()}
		peer.Observe(&h2, localNow-offset+30_000+rng.Int64N(50_000))
	}
	got, bound, ok := local.Offset()
	if !ok {
		t.Fatal("no estimate")
	}
	if d := got - offset; d < -bound || d > bound {
		t.Fatalf("offset %d, truth %d, error %d over bound %d", got, offset, d, bound)
	}
	// With minimum latencies 20 and 30 µs the error is about half their difference.
	if d := got - offset; d > -4_000 || d < -6_000 {
		t.Fatalf("offset error %d ns, want about -5000 (faster local→peer path)", d)
	}
	if bound < 25_000 || bound > 26_000 {
		t.Fatalf("bound %d, want about 25000 (half the minimum RTT)", bound)
	}
	pgot, _, _ := peer.Offset()
	if pgot+got > 1 || pgot+got < -1 {
		t.Fatalf("peer's estimate %d is not the negation of %d", pgot, got)
	}
}

func TestClockSyncWindowFollowsDrift(t *testing.T) {
	s := ClockSync{WindowFrames: 10}
	for i := 0; i < 10; i++ {
		s.Observe(&Header{SentNs: 0, MinDeltaNs: 7}, 100)
	}
	for i := 0; i < 20; i++ {
		s.Observe(&Header{SentNs: 0, MinDeltaNs: 7}, 300) // the peer's clock fell behind
	}
	if d := s.LocalMinDelta(); d != 300 {
		t.Fatalf("min delta %d after two full buckets of 300, want 300", d)
	}
	if _, _, ok := (&ClockSync{}).Offset(); ok {
		t.Fatal("estimate from nothing")
	}
}

// TestMACBindsRolesAndNonces: a MAC made by one side cannot stand in for the other side's (roles
// swapped) or for another exchange (nonces changed or swapped).
func TestMACBindsRolesAndNonces(t *testing.T) {
	var n1, n2 [NonceSize]byte
	n1[0], n2[0] = 1, 2
	secret := []byte("s")
	base := ComputeMAC(secret, RoleController, RoleWorker, &n1, &n2)
	if base != ComputeMAC(secret, RoleController, RoleWorker, &n1, &n2) {
		t.Fatal("MAC not deterministic")
	}
	for name, other := range map[string][MACSize]byte{
		"roles swapped":  ComputeMAC(secret, RoleWorker, RoleController, &n1, &n2),
		"nonces swapped": ComputeMAC(secret, RoleController, RoleWorker, &n2, &n1),
		"other nonce":    ComputeMAC(secret, RoleController, RoleWorker, &n1, &n1),
		"other secret":   ComputeMAC([]byte("t"), RoleController, RoleWorker, &n1, &n2),
	} {
		if other == base {
			t.Errorf("%s: same MAC", name)
		}
	}
}
