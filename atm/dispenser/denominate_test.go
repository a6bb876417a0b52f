package dispenser

import (
	"errors"
	"slices"
	"testing"
)

func units(spec ...any) []CashUnit {
	// spec: id, denomination, count triples
	var us []CashUnit
	for i := 0; i+2 < len(spec); i += 3 {
		us = append(us, CashUnit{ID: spec[i].(string), Denomination: int64(spec[i+1].(int)), Currency: "CNY", Count: spec[i+2].(int), Status: UnitOK})
	}
	return us
}

// bruteMin returns the fewest notes paying amount (or -1) by enumerating
// every combination of counts.
func bruteMin(amount int64, us []CashUnit, maxNotes int) int {
	best := -1
	var rec func(i int, left int64, notes int)
	rec = func(i int, left int64, notes int) {
		if notes > maxNotes || left < 0 {
			return
		}
		if left == 0 {
			if best < 0 || notes < best {
				best = notes
			}
			return
		}
		if i == len(us) {
			return
		}
		u := us[i]
		top := u.Count
		if !u.Usable() {
			top = 0
		}
		for c := 0; c <= top; c++ {
			rec(i+1, left-int64(c)*u.Denomination, notes+c)
		}
	}
	rec(0, amount, 0)
	return best
}

func checkMix(t *testing.T, amount int64, us []CashUnit, maxNotes int, m Mix) {
	t.Helper()
	got, err := m.Amount(us)
	if err != nil {
		t.Fatalf("mix %v: %v", m, err)
	}
	if got != amount {
		t.Fatalf("mix %v pays %d, want %d", m, got, amount)
	}
	if m.Notes() > maxNotes {
		t.Fatalf("mix %v has %d notes > %d", m, m.Notes(), maxNotes)
	}
	for id, c := range m {
		i := slices.IndexFunc(us, func(u CashUnit) bool { return u.ID == id })
		if c <= 0 || c > us[i].Count || !us[i].Usable() {
			t.Fatalf("mix %v takes %d from unit %+v", m, c, us[i])
		}
	}
}

func TestDenominate(t *testing.T) {
	cny := units("A", 10000, 50, "B", 5000, 50, "C", 2000, 50, "D", 1000, 50)
	tests := []struct {
		name     string
		amount   int64
		units    []CashUnit
		maxNotes int
		want     Mix
		err      error
	}{
		{"single note", 10000, cny, 40, Mix{"A": 1}, nil},
		{"fewest notes", 38000, cny, 40, Mix{"A": 3, "B": 1, "C": 1, "D": 1}, nil},
		{"60 from 50,20 is 3x20", 60, units("F", 50, 10, "T", 20, 10), 10, Mix{"T": 3}, nil},
		{"80 from 50,20 is 4x20", 80, units("F", 50, 10, "T", 20, 10), 10, Mix{"T": 4}, nil},
		{"110 from 50,20 is 50+3x20", 110, units("F", 50, 10, "T", 20, 10), 10, Mix{"F": 1, "T": 3}, nil},
		{"count respected", 30000, units("A", 10000, 2, "B", 5000, 10), 40, Mix{"A": 2, "B": 2}, nil},
		{"empty unit skipped", 10000, units("A", 10000, 0, "B", 5000, 10), 40, Mix{"B": 2}, nil},
		{"inoperative skipped", 10000, []CashUnit{
			{ID: "A", Denomination: 10000, Currency: "CNY", Count: 9, Status: UnitInoperative},
			{ID: "B", Denomination: 5000, Currency: "CNY", Count: 9, Status: UnitLow},
		}, 40, Mix{"B": 2}, nil},
		{"same denomination split fullest first", 50000, units("A1", 10000, 3, "A2", 10000, 4), 40, Mix{"A2": 4, "A1": 1}, nil},
		{"not a multiple", 10500, cny, 40, nil, ErrNotDispensable},
		{"not enough cash", 10000, units("B", 5000, 1), 40, nil, ErrNotDispensable},
		{"too many notes", 50000, units("D", 1000, 100), 40, nil, ErrTooManyItems},
		{"note limit forces bigger notes", 40000, units("A", 10000, 4, "D", 1000, 100), 4, Mix{"A": 4}, nil},
		{"zero amount", 0, cny, 40, nil, ErrNotDispensable},
		{"negative amount", -100, cny, 40, nil, ErrNotDispensable},
		{"no units", 100, nil, 40, nil, ErrNotDispensable},
		{"zero note limit", 10000, cny, 0, nil, ErrTooManyItems},
		{"greedy trap 30 from 25,10", 30, units("Q", 25, 5, "X", 10, 5), 10, Mix{"X": 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Denominate(tt.amount, tt.units, tt.maxNotes)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !m.Equal(tt.want) {
				t.Fatalf("mix = %v, want %v", m, tt.want)
			}
			checkMix(t, tt.amount, tt.units, tt.maxNotes, m)
		})
	}
}

func TestDenominateMatchesBruteForce(t *testing.T) {
	us := units("A", 50, 3, "B", 20, 4, "C", 15, 2, "D", 7, 3)
	for maxNotes := 1; maxNotes <= 12; maxNotes++ {
		for amount := int64(1); amount <= 300; amount++ {
			want := bruteMin(amount, us, maxNotes)
			m, err := Denominate(amount, us, maxNotes)
			if want < 0 {
				if err == nil {
					t.Fatalf("Denominate(%d, max %d) = %v, brute force found none", amount, maxNotes, m)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Denominate(%d, max %d): %v, brute force found %d notes", amount, maxNotes, err, want)
			}
			checkMix(t, amount, us, maxNotes, m)
			if m.Notes() != want {
				t.Fatalf("Denominate(%d, max %d) = %v (%d notes), optimum %d", amount, maxNotes, m, m.Notes(), want)
			}
		}
	}
}

func TestNearest(t *testing.T) {
	us := units("B", 5000, 10, "C", 2000, 10)
	got := Nearest(3000, us, 40, 2)
	want := []int64{2000, 4000, 5000} // nothing payable below 2000
	if !slices.Equal(got, want) {
		t.Fatalf("Nearest = %v, want %v", got, want)
	}
	for _, a := range got {
		if _, err := Denominate(a, us, 40); err != nil {
			t.Fatalf("Nearest offered %d which does not denominate: %v", a, err)
		}
	}
	// Above the capacity there is nothing to offer above.
	got = Nearest(1_000_000, us, 40, 2)
	if !slices.Equal(got, []int64{68000, 70000}) {
		t.Fatalf("Nearest above capacity = %v", got)
	}
	// With a note limit of 2, 100 (2x50) is payable, 120 is not.
	got = Nearest(10500, units("B", 5000, 10, "C", 2000, 10), 2, 1)
	if !slices.Equal(got, []int64{10000}) {
		t.Fatalf("Nearest with note limit = %v", got)
	}
	if Nearest(100, nil, 40, 3) != nil {
		t.Fatal("Nearest without units should be nil")
	}
}

func FuzzDenominate(f *testing.F) {
	f.Add(int64(60), uint8(5), uint8(5), uint8(5), uint8(5), uint16(50), uint16(20), uint16(10), uint16(5), uint8(10), uint8(0))
	f.Add(int64(38000), uint8(50), uint8(50), uint8(50), uint8(50), uint16(10000), uint16(5000), uint16(2000), uint16(1000), uint8(40), uint8(2))
	f.Fuzz(func(t *testing.T, amount int64, c1, c2, c3, c4 uint8, d1, d2, d3, d4 uint16, maxNotes uint8, inop uint8) {
		us := []CashUnit{
			{ID: "1", Denomination: int64(d1), Count: int(c1 % 30), Status: UnitOK},
			{ID: "2", Denomination: int64(d2), Count: int(c2 % 30), Status: UnitOK},
			{ID: "3", Denomination: int64(d3), Count: int(c3 % 30), Status: UnitOK},
			{ID: "4", Denomination: int64(d4), Count: int(c4 % 30), Status: UnitOK},
		}
		if inop < 4 {
			us[inop].Status = UnitInoperative
		}
		mn := int(maxNotes % 60)
		m, err := Denominate(amount, us, mn)
		if err != nil {
			if !errors.Is(err, ErrNotDispensable) && !errors.Is(err, ErrTooManyItems) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, ErrSearchLimit) {
				return
			}
			// Small cases: confirm there is really no solution.
			if amount > 0 && amount < 5000 && mn <= 12 && bruteMin(amount, us, mn) >= 0 {
				t.Fatalf("Denominate(%d, %v, %d) failed (%v) but a mix exists", amount, us, mn, err)
			}
			return
		}
		checkMix(t, amount, us, mn, m)
		if amount < 5000 && mn <= 12 {
			if want := bruteMin(amount, us, mn); m.Notes() != want {
				t.Fatalf("Denominate(%d, %v, %d) = %v, optimum %d notes", amount, us, mn, m, want)
			}
		}
	})
}

func BenchmarkDenominate(b *testing.B) {
	us := units("A", 10000, 2000, "B", 5000, 2000, "C", 2000, 2000, "D", 1000, 2000, "E", 500, 2000, "F", 100, 2000)
	for b.Loop() {
		if _, err := Denominate(1_888_800, us, 200); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDenominateImpossible measures the worst case: the whole space is
// searched to prove no mix exists.
func BenchmarkDenominateImpossible(b *testing.B) {
	us := units("A", 10000, 2000, "B", 5000, 2000, "C", 2000, 2000, "D", 1000, 2000, "E", 500, 2000, "F", 100, 2000)
	for b.Loop() {
		if _, err := Denominate(1_998_800, us, 200); err == nil {
			b.Fatal("expected failure")
		}
	}
}

// TestNearestWithin: the suggestions respect the terminal's limits. With
// 100, 50, 20 and 10 yuan notes the device can make 110.00 and 120.00, but
// a multiple of 50.00 between 100.00 and 3,000.00 wants 100.00, 150.00 and
// 200.00 for 123.45, and 3,000.00 itself for 4,000.00 (both were empty).
func TestNearestWithin(t *testing.T) {
	us := units("A", 10000, 500, "B", 5000, 500, "C", 2000, 200, "D", 1000, 200)
	b := Bounds{Min: 10000, Max: 300000, Multiple: 5000}
	for _, tt := range []struct {
		amount int64
		want   []int64
	}{
		{12345, []int64{10000, 15000, 20000}},
		{400000, []int64{295000, 300000}},
		{5000, []int64{10000, 15000}},
		{12000, []int64{10000, 15000, 20000}},
	} {
		got := NearestWithin(tt.amount, us, 40, 2, b)
		if !slices.Equal(got, tt.want) {
			t.Errorf("NearestWithin(%d) = %v, want %v", tt.amount, got, tt.want)
		}
		for _, a := range got {
			if _, err := Denominate(a, us, 40); err != nil {
				t.Errorf("offered %d which does not denominate: %v", a, err)
			}
		}
	}
}
