package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync/atomic"
)

// A token id (AuditEvent.TokenID and ParentTokenID, Target.TokenID) names a
// token; it must never be one. CheckTokenID decides, in this order:
//
//  1. A well-formed fingerprint (tfp_ and 22 base64url characters, what
//     Fingerprint returns) is accepted. The reference token API and the
//     simulator emit nothing else.
//  2. A value in the shape of a bearer secret is refused, whatever the
//     pattern: a JWT, JWS or JWE (eyJ… with dots), an AWS access key id, an
//     Authorization header value, or a known vendor token prefix (Ory,
//     GitHub, GitLab, Slack, Stripe, Google and others: secretPrefixes).
//  3. With a token id pattern set (SetTokenIDPattern, the setting
//     REVOKED_TOKEN_ID_PATTERN), the value must match it.
//  4. Without one, a value that looks random enough to be a secret is
//     refused (LooksRandom): 24 bytes or more, upper- and lower-case
//     letters and digits, and a high Shannon entropy. UUIDs, hex digests,
//     ULIDs, numbers and readable ids pass.
//
// The JSON Schema files say steps 1 and 2 (the schema describes the wire
// contract, not a deployment's pattern); step 4, a statistic, cannot be
// said in JSON Schema, and its fixtures are listed as such in
// jsonschema_test.go.

// SecretPrefix is a prefix that starts a vendor's bearer secrets.
type SecretPrefix struct {
	Prefix string
	// Kind names the secret, for error messages: "an Ory access token".
	Kind string
}

// secretPrefixes are prefixes that only bearer secrets start with. Each
// one is distinctive enough that no sane id starts with it.
var secretPrefixes = []SecretPrefix{
	{"ory_at_", "an Ory access token"},
	{"ory_rt_", "an Ory refresh token"},
	{"ory_ac_", "an Ory authorization code"},
	{"ory_st_", "an Ory session token"},
	{"ory_pat_", "an Ory personal access token"},
	{"ory_apikey_", "an Ory API key"},
	{"ghp_", "a GitHub personal access token"},
	{"gho_", "a GitHub OAuth token"},
	{"ghu_", "a GitHub user-to-server token"},
	{"ghs_", "a GitHub server-to-server token"},
	{"ghr_", "a GitHub refresh token"},
	{"github_pat_", "a GitHub fine-grained token"},
	{"glpat-", "a GitLab personal access token"},
	{"gloas-", "a GitLab OAuth secret"},
	{"glrt-", "a GitLab runner token"},
	{"xoxb-", "a Slack bot token"},
	{"xoxp-", "a Slack user token"},
	{"xoxa-", "a Slack app token"},
	{"xoxr-", "a Slack refresh token"},
	{"xoxe-", "a Slack token"},
	{"xoxs-", "a Slack token"},
	{"xapp-", "a Slack app-level token"},
	{"sk_live_", "a Stripe secret key"},
	{"rk_live_", "a Stripe restricted key"},
	{"sk_test_", "a Stripe secret key"},
	{"rk_test_", "a Stripe restricted key"},
	{"whsec_", "a Stripe webhook secret"},
	{"ya29.", "a Google access token"},
	{"1//", "a Google refresh token"},
	{"sk-ant-", "an Anthropic API key"},
	{"sk-proj-", "an OpenAI API key"},
	{"npm_", "an npm token"},
	{"pypi-", "a PyPI token"},
	{"shpat_", "a Shopify access token"},
	{"dop_v1_", "a DigitalOcean token"},
	{"Bearer ", "an Authorization header value"},
	{"bearer ", "an Authorization header value"},
}

// SecretPrefixes returns the known secret prefixes, for documentation and
// for the JSON Schema test.
func SecretPrefixes() []SecretPrefix { return append([]SecretPrefix(nil), secretPrefixes...) }

// IsFingerprint reports whether s has the exact shape of a Fingerprint:
// the prefix and the 22-character unpadded base64url encoding of 16 bytes
// (whose last character carries 2 bits, so it is one of A, Q, g, w).
func IsFingerprint(s string) bool {
	const n = len(FingerprintPrefix) + 22
	if len(s) != n || s[:len(FingerprintPrefix)] != FingerprintPrefix {
		return false
	}
	for i := len(FingerprintPrefix); i < n; i++ {
		if !isBase64URL(s[i]) {
			return false
		}
	}
	switch s[n-1] {
	case 'A', 'Q', 'g', 'w':
		return true
	}
	return false
}

func isBase64URL(c byte) bool {
	return c-'A' < 26 || c-'a' < 26 || c-'0' < 10 || c == '-' || c == '_'
}

// SecretKind returns what s looks like when it has the shape of a bearer
// secret by prefix or structure ("a JWT", "a GitHub OAuth token"), and ""
// otherwise. It does not judge randomness: see LooksRandom.
func SecretKind(s string) string {
	if strings.HasPrefix(s, "eyJ") && strings.IndexByte(s, '.') > 0 {
		return "a JWT"
	}
	if isAWSKeyID(s) {
		return "an AWS access key id"
	}
	if s == "" || !secretFirstBytes[s[0]] {
		return ""
	}
	for _, p := range secretPrefixes {
		if strings.HasPrefix(s, p.Prefix) {
			return p.Kind
		}
	}
	return ""
}

// secretFirstBytes marks the first bytes of secretPrefixes, so that most
// ids (UUIDs, numbers) are cleared by one lookup.
var secretFirstBytes = func() (t [256]bool) {
	for _, p := range secretPrefixes {
		t[p.Prefix[0]] = true
	}
	return t
}()

// isAWSKeyID reports whether s is an AWS access key id (AKIA long-term,
// ASIA temporary): 20 upper-case letters and digits. It is half of a
// credential pair and no token id.
func isAWSKeyID(s string) bool {
	if len(s) != 20 || (s[:4] != "AKIA" && s[:4] != "ASIA") {
		return false
	}
	for i := 4; i < len(s); i++ {
		if c := s[i]; c-'A' >= 26 && c-'0' >= 10 {
			return false
		}
	}
	return true
}

// Thresholds of LooksRandom, measured by TestLooksRandomMeasured on random
// strings (base62 and base64url, 24 to 128 characters: the reference token
// API's 43-character tokens, Box's 32-character tokens, AWS secret keys,
// Okta API tokens) and on ids that must pass (UUIDs, hex digests, ULIDs,
// numbers, readable ids).
const (
	// RandomMinLen is the shortest value LooksRandom can refuse. Shorter
	// random strings (Azure's 22-character uti, Okta's 20-character ids)
	// are ids, and too short to be guessed as tokens.
	RandomMinLen = 24
	// A random-looking value has a Shannon entropy per character of at
	// least randomEntropyShare of log2(n) (n its length, up to 64: the
	// most a string of n distinct characters reaches), and at most
	// randomMaxBits. With the word share below, LooksRandom lets through
	// 0.25% of random base62 strings of 24 characters, 0.08% of 32 and
	// 0.04% of 43, none of 64 or more; readable ids of those lengths
	// have 3.7 to 4.4 bits and are told apart by their words.
	randomEntropyShare = 0.80
	randomMaxBits      = 4.3
	// randomMaxWordShare is the largest share of a random-looking value
	// that lies in runs of four or more lower-case letters (words): in
	// random base62 it exceeds 0.5 in 0.1% of 32-character draws, in ids
	// made of words ("AccessTokenForDevice42") it is above 0.5.
	randomMaxWordShare = 0.5
)

// LooksRandom reports whether s looks like a random bearer secret rather
// than an id: at least RandomMinLen bytes, upper-case and lower-case
// letters mixed (the base62 and base64 alphabets secrets are drawn from),
// little of it in runs of lower-case letters (words), and a Shannon entropy per
// character near what random strings of that length reach. Hex (UUIDs,
// digests), upper-case base32 (ULIDs), numbers and readable ids pass; ids
// drawn at random from a mixed-case alphabet (a KSUID, an Okta jti) look
// like secrets, and a deployment that uses them sets a token id pattern.
// It does not allocate.
func LooksRandom(s string) bool {
	if len(s) < RandomMinLen {
		return false
	}
	// First the cheap tests, then the entropy.
	var upper, lower bool
	inWords, run := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c-'a' < 26 {
			lower = true
			run++
			continue
		}
		upper = upper || c-'A' < 26
		if run >= 4 {
			inWords += run
		}
		run = 0
	}
	if run >= 4 {
		inWords += run
	}
	if !upper || !lower || float64(inWords) > randomMaxWordShare*float64(len(s)) {
		return false
	}
	var counts [256]uint32
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	return entropy(&counts, len(s)) >= randomThreshold(len(s))
}

// entropy is the Shannon entropy, in bits per byte, of a string of n bytes
// with the given byte counts.
func entropy(counts *[256]uint32, n int) float64 {
	var h float64
	fn := float64(n)
	for _, c := range counts {
		if c == 0 {
			continue
		}
		p := float64(c) / fn
		h -= p * math.Log2(p)
	}
	return h
}

func randomThreshold(n int) float64 {
	return min(randomEntropyShare*math.Log2(float64(min(n, 64))), randomMaxBits)
}

// tokenIDPattern is the pattern set by SetTokenIDPattern, nil for none.
var tokenIDPattern atomic.Pointer[regexp.Regexp]

// EnvTokenIDPattern is the environment variable that the commands read the
// token id pattern from (see SetTokenIDPattern).
const EnvTokenIDPattern = "REVOKED_TOKEN_ID_PATTERN"

// ErrTokenIDPattern is wrapped by SetTokenIDPattern's error for a pattern
// that does not compile.
var ErrTokenIDPattern = errors.New("invalid token id pattern")

// CompileTokenIDPattern compiles a token id pattern, anchored at both ends
// (a pattern "[0-9a-f-]{36}" accepts only values made entirely of it). The
// empty pattern gives nil.
func CompileTokenIDPattern(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, nil
	}
	// Compiled alone first, so that an error quotes the pattern as given.
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenIDPattern, err)
	}
	return regexp.MustCompile(`^(?:` + pattern + `)$`), nil
}

// SetTokenIDPattern sets, for the whole process, the pattern that token ids
// other than fingerprints must match; "" removes it, so that the randomness
// test decides instead. Commands call it once at start from their
// configuration, before decoding anything; it is safe for concurrent use
// but not meant to change while messages flow. Values in the shape of a
// bearer secret (SecretKind) are refused whatever the pattern.
func SetTokenIDPattern(pattern string) error {
	re, err := CompileTokenIDPattern(pattern)
	if err != nil {
		return err
	}
	tokenIDPattern.Store(re)
	return nil
}

// TokenIDPattern returns the pattern set by SetTokenIDPattern, "" for none.
func TokenIDPattern() string {
	re := tokenIDPattern.Load()
	if re == nil {
		return ""
	}
	s := re.String()
	return s[len(`^(?:`) : len(s)-len(`)$`)]
}

// TokenIDProblem returns why v cannot be a token id, or "" when it can (see
// the rules at the top of this file). The reason never quotes v.
func TokenIDProblem(v string) string {
	if IsFingerprint(v) {
		return ""
	}
	if kind := SecretKind(v); kind != "" {
		return "looks like a raw token (" + kind + "), which must never travel in the clear; send its fingerprint (" + FingerprintPrefix + "…) instead"
	}
	if re := tokenIDPattern.Load(); re != nil {
		if !re.MatchString(v) {
			return "neither a token fingerprint (" + FingerprintPrefix + "…) nor an id matching the token id pattern (" + EnvTokenIDPattern + ")"
		}
		return ""
	}
	if LooksRandom(v) {
		return "looks like a raw token (a long random string), which must never travel in the clear; send its fingerprint (" + FingerprintPrefix + "…) instead, or set " + EnvTokenIDPattern + " to your token ids' format"
	}
	return ""
}

// RedactTokenIDs returns value, a JSON event or command, with every token id
// that TokenIDProblem refuses (token_id and parent_token_id of an event,
// target.token_id of a command) replaced by the Fingerprint of that value,
// and the paths of the fields it replaced. A dead-letter copy of a message
// refused for such a token id keeps the message useful to operators and
// matchable at the token API, without the secret. It returns value
// unchanged and no paths when nothing needed replacing or value is not a
// JSON object.
func RedactTokenIDs(value []byte) ([]byte, []string) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if dec.Decode(&doc) != nil {
		return value, nil
	}
	var paths []string
	redact := func(obj map[string]any, key, path string) {
		if v, ok := obj[key].(string); ok && v != "" && TokenIDProblem(v) != "" {
			obj[key] = Fingerprint(v)
			paths = append(paths, path)
		}
	}
	redact(doc, "token_id", "token_id")
	redact(doc, "parent_token_id", "parent_token_id")
	if target, ok := doc["target"].(map[string]any); ok {
		redact(target, "token_id", "target.token_id")
	}
	if len(paths) == 0 {
		return value, nil
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if enc.Encode(doc) != nil {
		return value, nil
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), paths
}
