package schemas

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

func TestInternerSharesRepeatedValues(t *testing.T) {
	in := newInterner(4)
	a := in.str([]byte("user-000042"))
	b := in.str([]byte("user-000042"))
	if a != "user-000042" || b != a {
		t.Fatalf("got %q and %q", a, b)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("the same bytes twice made two copies")
	}
	// 16 slots and 1,000 values: most take another's slot, and every
	// answer is still the bytes asked for.
	for i := range 1000 {
		v := fmt.Sprintf("token-%d", i)
		if got := in.str([]byte(v)); got != v {
			t.Fatalf("asked for %q, got %q", v, got)
		}
	}
	long := strings.Repeat("x", maxInterned+1)
	if l1, l2 := in.str([]byte(long)), in.str([]byte(long)); l1 != long || unsafe.StringData(l1) == unsafe.StringData(l2) {
		t.Error("a value longer than maxInterned was cached")
	}
}

// TestInternerConcurrent runs decoders on many goroutines over values that
// collide in a small table (run with -race).
func TestInternerConcurrent(t *testing.T) {
	in := newInterner(3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				v := fmt.Sprintf("v-%d", (i*7+g)%50)
				if got := in.str([]byte(v)); got != v {
					t.Errorf("asked for %q, got %q", v, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDecodeEventSharesIDs: two events of one user, token and address
// decode to one copy of each of those values, and to their own event ids.
func TestDecodeEventSharesIDs(t *testing.T) {
	ev := func(id string) []byte {
		return []byte(`{"id":"` + id + `","time":"2026-01-02T03:04:05Z","type":"token.used","user_id":"u-share","token_id":"t-share","ip":"198.51.100.7"}`)
	}
	a, err := DecodeEvent(ev("e-1"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeEvent(ev("e-2"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "e-1" || b.ID != "e-2" {
		t.Fatalf("ids %q and %q", a.ID, b.ID)
	}
	for _, f := range []struct{ name, x, y string }{{"user_id", a.UserID, b.UserID}, {"token_id", a.TokenID, b.TokenID}, {"ip", a.IP, b.IP}} {
		if f.x != f.y || unsafe.StringData(f.x) != unsafe.StringData(f.y) {
			t.Errorf("%s: %q and %q are two copies", f.name, f.x, f.y)
		}
	}
}
