package idp

import (
	"strings"
	"testing"
)

// expandByRE is expand as the regular expression placeholderRE does it:
// the reference the scanner must match.
func expandByRE(tmpl, base string, vals map[string]string, esc func(string) string) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(ph string) string {
		name := ph[1 : len(ph)-1]
		if name == "base" {
			return strings.TrimSuffix(base, "/")
		}
		if v, ok := vals[name]; ok {
			return esc(v)
		}
		return ph
	})
}

func FuzzExpandMatchesPlaceholderRE(f *testing.F) {
	for _, seed := range []string{
		"{base}/admin/users/{user_id}/revoke",
		"{base}/oauth2/tokens?subject={user_id}&client={client_id}",
		`{"sub":"{user_id}","all":true,"x":{"a":false}}`,
		"{{user_id}}", "{}", "{", "}", "{user_id", "user_id}", "{a b}", "{unknown}{base}",
		"{user.id}{user-id}{USER_ID}", "", "no placeholders", "{base}{base}",
	} {
		f.Add(seed, "{user_id}")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		vals := map[string]string{"user_id": value, "client_id": "c/1", "": "empty", "user.id": "dot"}
		esc := func(s string) string { return "<" + s + ">" }
		got := expand(tmpl, "http://idp.example/", vals, esc)
		want := expandByRE(tmpl, "http://idp.example/", vals, esc)
		if got != want {
			t.Fatalf("expand(%q) = %q, the regular expression gives %q", tmpl, got, want)
		}
	})
}

func BenchmarkExpandURL(b *testing.B) {
	vals := map[string]string{"user_id": "user-123456", "client_id": "web-app"}
	tmpl := "{base}/admin/users/{user_id}/tokens?client_id={client_id}"
	b.ReportAllocs()
	for b.Loop() {
		_ = expandURL(tmpl, "http://127.0.0.1:8080/", vals)
	}
}
