package hashenc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// A hash and a map given the same random operations agree, and every
// encoding decodes to the same fields in the same order.
func TestHashAgainstMap(t *testing.T) {
	for _, fields := range []int{3, indexAt - 1, indexAt + 5, 200} {
		t.Run(fmt.Sprint(fields, " fields"), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(fields)))
			h, _ := Decode([]byte{0})
			want := map[string]string{}
			var order []string
			for op := 0; op < 2000; op++ {
				f := fmt.Sprint("f", r.IntN(fields))
				switch r.IntN(3) {
				case 0, 1:
					v := bytes.Repeat([]byte{'v'}, r.IntN(300))
					_, had := want[f]
					if added := h.Set([]byte(f), v); added == had {
						t.Fatalf("op %d: Set(%s) added %v, field was there: %v", op, f, added, had)
					}
					if !had {
						order = append(order, f)
					}
					want[f] = string(v)
				case 2:
					_, had := want[f]
					if h.Delete([]byte(f)) != had {
						t.Fatalf("op %d: Delete(%s) != %v", op, f, had)
					}
					delete(want, f)
					for i, g := range order {
						if g == f {
							order = append(order[:i], order[i+1:]...)
							break
						}
					}
				}
				if op%97 != 0 {
					continue
				}
				b := h.Encode()
				d, err := Decode(b)
				if err != nil {
					t.Fatalf("op %d: %v", op, err)
				}
				if d.Len() != len(want) || d.Size() != len(b) {
					t.Fatalf("op %d: %d fields, size %d; want %d, %d", op, d.Len(), d.Size(), len(want), len(b))
				}
				for i, f := range order {
					g, v := d.Field(i)
					if string(g) != f || string(v) != want[f] {
						t.Fatalf("op %d: field %d is %q, want %q", op, i, g, f)
					}
					if got, ok := d.Get([]byte(f)); !ok || string(got) != want[f] {
						t.Fatalf("op %d: Get(%s) = %q, %v", op, f, got, ok)
					}
				}
			}
		})
	}
}

func TestSize(t *testing.T) {
	h := New()
	for i := 0; i < 300; i++ {
		h.Set([]byte(fmt.Sprint("field", i%150)), bytes.Repeat([]byte{'x'}, i))
		if n := len(h.Encode()); h.Size() != n {
			t.Fatalf("set %d: size %d, encoding %d", i, h.Size(), n)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          {},
		"count too high": {2, 1, 'a', 1, 'b'},
		"cut value":      {1, 1, 'a', 5, 'b'},
		"trailing bytes": {1, 1, 'a', 1, 'b', 0},
		"same field":     {2, 1, 'a', 0, 1, 'a', 0},
		"huge count":     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode(%v) = %v, want ErrCorrupt", name, b, err)
		}
	}
}

// FuzzDecode: any bytes either fail to decode or decode to a hash that
// encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 'a', 1, 'b'})
	f.Add([]byte{2, 1, 'a', 0, 1, 'b', 3, 'x', 'y', 'z'})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if got := h.Encode(); !bytes.Equal(got, b) {
			// A uvarint may be written longer than needed: decoding is
			// not unique. The re-encoding must still decode the same.
			again, err := Decode(got)
			if err != nil || again.Len() != h.Len() {
				t.Fatalf("re-encoding %v of %v: %v", got, b, err)
			}
		}
	})
}
