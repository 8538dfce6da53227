package server

import (
	"fmt"
	"testing"
	"time"
)

// fill stores users×perUser root tokens, each with one downscoped child.
func fill(tb testing.TB, s *store, users, perUser int, now time.Time) {
	tb.Helper()
	for u := range users {
		for k := range perUser {
			id := fmt.Sprintf("root-%d-%d", u, k)
			root := &token{
				id: id, subject: fmt.Sprintf("user-%d", u), clientID: fmt.Sprintf("client-%d", u%50),
				sessionID: fmt.Sprintf("sess-%d-%d", u, k), issuedAt: now, expiresAt: now.Add(time.Hour),
			}
			if err := s.issue(root, now); err != nil {
				tb.Fatal(err)
			}
			_, err := s.exchange(id, now, func(p tokenView) (*token, error) {
				return &token{id: "child-" + id, subject: p.Subject, clientID: p.ClientID, sessionID: p.SessionID,
					issuedAt: now, expiresAt: p.ExpiresAt}, nil
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// With 50k users and 100k tokens, revocations touch only their family and
// the indexes stay consistent.
func TestStoreAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100k tokens")
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStore()
	fill(t, s, 50_000, 1, now)
	if s.size() != 100_000 {
		t.Fatalf("size %d", s.size())
	}
	start := time.Now()
	if n := s.revokeIndexed(bySubject, "user-4242", now); n != 2 {
		t.Fatalf("subject revoke: %d", n)
	}
	if n := s.revokeFamily("root-7-0", now); n != 2 {
		t.Fatalf("family revoke: %d", n)
	}
	if n := s.revokeIndexed(bySession, "sess-9-0", now); n != 2 {
		t.Fatalf("session revoke: %d", n)
	}
	t.Logf("three targeted revocations among 100k tokens took %s", time.Since(start))
	if n := s.revokeIndexed(byClient, "client-3", now); n != 2*1000 {
		t.Fatalf("client revoke: %d", n)
	}
	if c, ok := s.lookup("child-root-53-0"); !ok || !c.Revoked {
		t.Fatal("child of a revoked client's token is live")
	}
	if len(s.bySubject) != 50_000-3-1000 || len(s.byClient) != 49 {
		t.Fatalf("indexes: %d subjects, %d clients", len(s.bySubject), len(s.byClient))
	}
	// Everything expires; writes prune it all in bounded batches.
	later := now.Add(2 * time.Hour)
	for s.size() > 0 {
		s.revokeFamily("nothing", later)
	}
	if len(s.bySubject)+len(s.bySession)+len(s.byClient)+len(s.expiry) != 0 {
		t.Fatal("indexes not emptied by pruning")
	}
}

func BenchmarkStore(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStore()
	fill(b, s, 100_000, 1, now)
	b.Run("lookup", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s.lookup(fmt.Sprintf("root-%d-0", i%100_000))
				i++
			}
		})
	})
	b.Run("issue", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			_ = s.issue(&token{id: fmt.Sprintf("bench-%d", i), subject: "bench", issuedAt: now, expiresAt: now.Add(time.Hour)}, now)
		}
	})
	b.Run("revoke-subject", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			s.revokeIndexed(bySubject, fmt.Sprintf("user-%d", i%100_000), now)
		}
	})
}
