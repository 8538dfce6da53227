package schemas_test

import (
	"testing"
	"unicode/utf8"

	"github.com/revoked-dev/revoked/schemas"
)

func TestCutUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: not split
		{"日本", 4, "日"},
		{"日本", 2, ""},
	} {
		got := schemas.CutUTF8(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("CutUTF8(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
