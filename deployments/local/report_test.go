package main

import "testing"

func TestByRuleNamesEachRuleInOrder(t *testing.T) {
	for _, c := range []struct {
		counts map[string]int
		want   string
	}{
		{nil, ""},
		{map[string]int{}, ""},
		{map[string]int{"risk": 5}, " (risk 5)"},
		{map[string]int{"token_replay": 1, "risk": 3}, " (risk 3, token_replay 1)"},
	} {
		if got := byRule(c.counts); got != c.want {
			t.Errorf("byRule(%v) = %q, want %q", c.counts, got, c.want)
		}
	}
}
