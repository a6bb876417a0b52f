package dispenser

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// searchBudget bounds the number of memoised states of one solver. Real
// dispensers (a handful of denominations, a few hundred notes per dispense)
// stay far below it; pathological inputs get ErrSearchLimit instead of
// running unbounded.
const searchBudget = 1 << 20

// ErrSearchLimit is returned (wrapping ErrNotDispensable) when Denominate
// gave up because the search space was too large to settle exactly.
var ErrSearchLimit = fmt.Errorf("%w: search limit reached", ErrNotDispensable)

// group merges the usable units of one denomination.
type group struct {
	denom int64
	max   int64      // notes available, capped at maxNotes
	units []CashUnit // fullest first
}

type choice struct {
	notes int32 // minimum notes to pay the rest; inf when impossible
	take  int32 // notes taken from this group in that optimum
}

// solver finds minimum-note exact payments. f(i, r) = fewest notes paying r
// from groups i.. (denominations descending) respecting counts; its memo
// does not depend on the target, so Nearest shares one solver across all
// candidates.
type solver struct {
	groups   []group
	gcdSuf   []int64 // gcd of denominations i..
	valueSuf []int64 // value of all notes of groups i.. (saturating)
	maxNotes int
	inf      int32
	memo     []map[int64]choice
	states   int
}

var errBudget = errors.New("budget")

func newSolver(units []CashUnit, maxNotes int) *solver {
	var usable []CashUnit
	for _, u := range units {
		if u.Usable() {
			usable = append(usable, u)
		}
	}
	slices.SortFunc(usable, func(a, b CashUnit) int {
		return cmp.Or(cmp.Compare(b.Denomination, a.Denomination), cmp.Compare(b.Count, a.Count), cmp.Compare(a.ID, b.ID))
	})
	s := &solver{maxNotes: maxNotes, inf: int32(maxNotes) + 1}
	for _, u := range usable {
		if n := len(s.groups); n > 0 && s.groups[n-1].denom == u.Denomination {
			g := &s.groups[n-1]
			g.max = min(g.max+int64(u.Count), int64(maxNotes))
			g.units = append(g.units, u)
			continue
		}
		s.groups = append(s.groups, group{denom: u.Denomination, max: min(int64(u.Count), int64(maxNotes)), units: []CashUnit{u}})
	}
	n := len(s.groups)
	s.gcdSuf = make([]int64, n+1)
	s.valueSuf = make([]int64, n+1)
	s.memo = make([]map[int64]choice, n)
	for i := n - 1; i >= 0; i-- {
		s.gcdSuf[i] = gcd(s.groups[i].denom, s.gcdSuf[i+1])
		s.valueSuf[i] = satAdd(s.valueSuf[i+1], satMul(s.groups[i].denom, s.groups[i].max))
		s.memo[i] = map[int64]choice{}
	}
	return s
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

const maxInt64 = int64(^uint64(0) >> 1)

func satAdd(a, b int64) int64 {
	if a > maxInt64-b {
		return maxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a != 0 && b > maxInt64/a {
		return maxInt64
	}
	return a * b
}

// f returns the fewest notes paying r with groups i.. (s.inf if impossible
// within maxNotes).
func (s *solver) f(i int, r int64) (int32, error) {
	if r == 0 {
		return 0, nil
	}
	if i >= len(s.groups) || r < 0 || r%s.gcdSuf[i] != 0 || r > s.valueSuf[i] {
		return s.inf, nil
	}
	g := s.groups[i]
	if i == len(s.groups)-1 {
		if r%g.denom == 0 && r/g.denom <= g.max {
			return int32(r / g.denom), nil
		}
		return s.inf, nil
	}
	if c, ok := s.memo[i][r]; ok {
		return c.notes, nil
	}
	if s.states >= searchBudget {
		return 0, errBudget
	}
	s.states++
	best := choice{notes: s.inf, take: -1}
	next := s.groups[i+1].denom
	for c := min(g.max, r/g.denom); c >= 0; c-- {
		rest := r - c*g.denom
		// Fewer notes of this group only raise the lower bound
		// c + ceil(rest/next), because g.denom > next.
		if lb := c + (rest+next-1)/next; lb >= int64(best.notes) {
			break
		}
		sub, err := s.f(i+1, rest)
		if err != nil {
			return 0, err
		}
		if sub < s.inf && int64(sub)+c < int64(best.notes) {
			best = choice{notes: sub + int32(c), take: int32(c)}
		}
	}
	s.memo[i][r] = best
	return best.notes, nil
}

// mix rebuilds the optimum for amount; f(0, amount) must have succeeded.
func (s *solver) mix(amount int64) Mix {
	m := Mix{}
	r := amount
	for i := 0; i < len(s.groups) && r > 0; i++ {
		g := s.groups[i]
		var take int64
		if i == len(s.groups)-1 {
			take = r / g.denom
		} else {
			take = int64(s.memo[i][r].take)
		}
		r -= take * g.denom
		for _, u := range g.units { // fullest unit first
			n := min(take, int64(u.Count))
			if n > 0 {
				m[u.ID] += int(n)
				take -= n
			}
		}
	}
	return m
}

// Denominate chooses the notes that pay amount (minor units) exactly from
// units, using the fewest notes, never more than maxNotes, never more than a
// unit holds, and never from an empty or inoperative unit. Units are assumed
// to be in one currency (pass only the units of the dispense currency).
// Among mixes with equally few notes it takes larger notes first and, within
// a denomination, the fuller unit first.
//
// The search is exact (memoised branch and bound), so it finds a mix whenever
// one exists: 60 from {50, 20} gives 3x20. It returns an error wrapping
// ErrNotDispensable when no mix exists, ErrTooManyItems when the amount needs
// more than maxNotes notes.
func Denominate(amount int64, units []CashUnit, maxNotes int) (Mix, error) {
	if amount <= 0 {
		return nil, fmt.Errorf("%w: amount %d is not positive", ErrNotDispensable, amount)
	}
	if maxNotes <= 0 {
		return nil, fmt.Errorf("%w: note limit %d", ErrTooManyItems, maxNotes)
	}
	s := newSolver(units, maxNotes)
	n, err := s.f(0, amount)
	if err != nil {
		return nil, ErrSearchLimit
	}
	if n > int32(maxNotes) {
		if amount > s.capacity() && amount <= totalValue(units) {
			return nil, fmt.Errorf("%w: %d needs more than %d notes", ErrTooManyItems, amount, maxNotes)
		}
		return nil, fmt.Errorf("%w: %d", ErrNotDispensable, amount)
	}
	return s.mix(amount), nil
}

// capacity is the largest value maxNotes notes can have.
func (s *solver) capacity() int64 {
	var v int64
	left := int64(s.maxNotes)
	for _, g := range s.groups {
		n := min(left, g.max)
		v = satAdd(v, satMul(n, g.denom))
		left -= n
	}
	return v
}

func totalValue(units []CashUnit) int64 {
	var v int64
	for _, u := range units {
		if u.Usable() {
			v = satAdd(v, satMul(int64(u.Count), u.Denomination))
		}
	}
	return v
}

// nearestScan bounds how many candidate amounts Nearest tries on each side.
const nearestScan = 100_000

// Nearest returns up to n payable amounts below amount and up to n above it
// (the closest ones on each side), in ascending order; amount itself is not
// included. Payable means Denominate would succeed with the same units and
// maxNotes. The ATM offers these when the customer's amount cannot be paid.
func Nearest(amount int64, units []CashUnit, maxNotes, n int) []int64 {
	return NearestWithin(amount, units, maxNotes, n, Bounds{})
}

// Bounds restrict the amounts NearestWithin offers to the terminal's
// limits: multiples of Multiple within [Min, Max] (each ignored when 0).
type Bounds struct{ Min, Max, Multiple int64 }

// NearestWithin is Nearest restricted to b: the closest payable amounts that
// the limits also allow, so that a limit never hides every suggestion (the
// device's notes can make 110.00 and 120.00, but a multiple of 50.00 wants
// 100.00 and 150.00). An amount outside [Min, Max] gets the nearest allowed
// ones, the bound itself included when payable.
func NearestWithin(amount int64, units []CashUnit, maxNotes, n int, b Bounds) []int64 {
	if n <= 0 || maxNotes <= 0 {
		return nil
	}
	s := newSolver(units, maxNotes)
	if len(s.groups) == 0 {
		return nil
	}
	step := s.gcdSuf[0]
	if b.Multiple > 0 {
		step = satMul(step/gcd(step, b.Multiple), b.Multiple) // lcm
	}
	top := s.capacity()
	if b.Max > 0 && b.Max < top {
		top = b.Max
	}
	bottom := max(b.Min, 1)
	payable := func(r int64) (ok bool, stop bool) {
		k, err := s.f(0, r)
		if err != nil {
			return false, true
		}
		return k <= int32(maxNotes), false
	}
	var below, above []int64
	start := min(amount-1, top)
	for r, tries := start-start%step, 0; r >= bottom && len(below) < n && tries < nearestScan; r, tries = r-step, tries+1 {
		ok, stop := payable(r)
		if stop {
			break
		}
		if ok {
			below = append(below, r)
		}
	}
	first := max(amount, 0)/step*step + step
	if first < bottom {
		first = (bottom + step - 1) / step * step
	}
	for r, tries := first, 0; r <= top && len(above) < n && tries < nearestScan; r, tries = r+step, tries+1 {
		ok, stop := payable(r)
		if stop {
			break
		}
		if ok {
			above = append(above, r)
		}
	}
	slices.Reverse(below)
	return append(below, above...)
}
