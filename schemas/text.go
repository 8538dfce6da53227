package schemas

// CutUTF8 returns s cut to at most n bytes, at a rune boundary, so that a
// value read from outside fits a field's bound without splitting a
// character.
func CutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
