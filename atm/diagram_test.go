package atm

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The state diagram in doc.go lists exactly the transitions Next allows:
// every "From --Event--> To" in it is allowed by Next and leads to To,
// and every transition Next allows is in it.
func TestDocDiagramMatchesNext(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	step := regexp.MustCompile(`(\w+) --(\w+)--> (\w+)`)
	var documented []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "//\t") || !strings.Contains(line, "-->") {
			continue
		}
		line = strings.TrimPrefix(line, "//\t")
		if i := strings.Index(line, "  "); i >= 0 { // a comment follows
			line = line[:i]
		}
		// A chain "A --e--> B --f--> C": each match consumes its target,
		// so match again from each target.
		for rest := line; ; {
			m := step.FindStringSubmatchIndex(rest)
			if m == nil {
				break
			}
			from, ev, to := rest[m[2]:m[3]], rest[m[4]:m[5]], rest[m[6]:m[7]]
			documented = append(documented, from+" --"+ev+"--> "+to)
			rest = rest[m[6]:]
		}
	}
	var allowed []string
	for s := StateNone; s <= StateInDoubt; s++ {
		for e := EvNone; e <= EvOperatorNotPaid; e++ {
			if next, err := Next(s, e); err == nil {
				allowed = append(allowed, s.String()+" --"+strings.TrimPrefix(e.String(), "Ev")+"--> "+next.String())
			}
		}
	}
	slices.Sort(documented)
	slices.Sort(allowed)
	if !slices.Equal(documented, allowed) {
		t.Fatalf("doc.go's diagram:\n  %s\nNext allows:\n  %s", strings.Join(documented, "\n  "), strings.Join(allowed, "\n  "))
	}
}
