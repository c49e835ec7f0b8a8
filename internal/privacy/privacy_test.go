package privacy

import (
	"slices"
	"testing"

	"bluetick/internal/jid"
)

func TestFormsAndMatching(t *testing.T) {
	cases := []struct {
		j    string
		want []string
	}{
		{"a@d.example/r", []string{"a@d.example/r", "a@d.example", "d.example/r", "d.example"}},
		{"a@d.example", []string{"a@d.example", "d.example"}},
		{"d.example/r", []string{"d.example/r", "d.example"}},
		{"d.example", []string{"d.example"}},
	}
	for _, c := range cases {
		if got := Forms(jid.MustParse(c.j)); !slices.Equal(got, c.want) {
			t.Errorf("Forms(%s) = %v, want %v", c.j, got, c.want)
		}
	}
	for _, c := range []struct {
		entry, j string
		want     bool
	}{
		{"a@d.example", "a@d.example/any", true},
		{"a@d.example/r", "a@d.example/other", false},
		{"d.example", "z@d.example/x", true},
		{"d.example/r", "z@d.example/r", true}, // XEP-0016 §2.1 lookup order: user@domain/resource, user@domain, domain/resource, domain
		{"d.example/r", "d.example/r", true},
		{"a@d.example", "a@other.example", false},
	} {
		if got := Matches(c.entry, jid.MustParse(c.j)); got != c.want {
			t.Errorf("Matches(%s, %s) = %v", c.entry, c.j, got)
		}
	}
}
