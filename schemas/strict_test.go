package schemas

import "testing"

func TestSuspectKeys(t *testing.T) {
	for _, c := range []struct {
		json string
		want bool
	}{
		{`{"id":"E1","user_id":"Alice","attrs":{"k":"V"}}`, false},
		{`{"User_ID":"alice"}`, true},
		{`{"attrs":{"Reason":"x"}}`, true}, // the walk then allows it: attrs is a map
		{`{"a":"say \"Hi\": \"There\"","b":1}`, false},
		{`{"a":"x\\","B" :1}`, true},
		{`{"us\u0065r_id":"alice"}`, true},
		{`{"a":"B"}`, false},
		{`["A", "B"]`, false},
		{`{"unterminated`, false},
	} {
		if got := suspectKeys([]byte(c.json)); got != c.want {
			t.Errorf("suspectKeys(%s) = %t, want %t", c.json, got, c.want)
		}
	}
}

func TestIdentifierRunes(t *testing.T) {
	for _, c := range []struct {
		s    string
		want bool
	}{
		{"alice@example.com", false}, {"zoë", false}, {"用户", false},
		{"a\tb", true}, {"a\x7fb", true}, {"ali\u202ece", true}, {"dev\u200b1", true},
		{"\ufeffbom", true}, {"a\ufffdb", true}, {"a\u2066b", true},
	} {
		if got := hasBadIDRune(c.s); got != c.want {
			t.Errorf("hasBadIDRune(%q) = %t, want %t", c.s, got, c.want)
		}
	}
}

// A syntax error ends checkRaw's walk: it used to loop for ever on a
// truncated array or object once the scan sent it walking (invalid UTF-8,
// an escape or an upper-case letter in a key), so one such message
// stopped a reader's partition.
func TestCheckRawEndsOnSyntaxErrors(t *testing.T) {
	for _, s := range []string{
		"[\x80",
		`{"id":"é` + "\xff" + `","scopes":["a",`,
		`{"reason":{"rule_id":"x\u2066","evidence":["ev-1","ev-e`,
		`{"Attrs":{"K":[{"A":`,
		`{"id":"\u0041", "x":[1,2,}`,
	} {
		if _, err := DecodeEvent([]byte(s)); err == nil {
			t.Errorf("DecodeEvent(%q) accepted", s)
		}
		if _, err := DecodeCommand([]byte(s)); err == nil {
			t.Errorf("DecodeCommand(%q) accepted", s)
		}
	}
}
