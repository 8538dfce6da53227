package schemas

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// Secrets in the formats their issuers document (made-up values of the
// right shape, or the vendors' own published examples), each of which must
// be refused as a token id.
var secretFormats = map[string]string{
	"ory access token (hydra v2)":  "ory_at_bzzHIqUZJ1XoVzvdcLnW8a-Bwc6bBn3OI6xGf3X8S5E.MLgyrXqbLL4QHGhyTcDDzlJ5qFQUI-YgGIzCo0Nl-XE",
	"ory refresh token":            "ory_rt_t2FEvGbMOk2eFnw0SGuaTWMjfOL4ddZt3-Y8pJ8FpBc.dAEgyQ3n2K04kUEDrq8mnUu5I0ek4v3Bg7lNmUNAqG0",
	"ory authorization code":       "ory_ac_qLh7F1vY7wr5hQmOdeVhZwYb1xy3mT3fjmL2Rzj1z1c.kbTqK3yF0wZ5wNnN9S4EwYkY0rQ7iQy8nN1Vt0sS4o8",
	"ory session token":            "ory_st_gZ7yR2nQ5xJ8kL1mP4vB6cT9wD3fH0sA",
	"hydra v1 opaque token":        "Yx3Ggq9K8wE5QbF0oG0c5vN3tJ6hZ1rL2mP8sD4uA7k.kE9nW2bQ6fH1xR3tY5vN0mL8pS4cJ7gD2aZ6uK1oI3e",
	"github classic PAT":           "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
	"github oauth token":           "gho_16C7e42F292c6912E7710c838347Ae178B4a",
	"github user-to-server":        "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
	"github server-to-server":      "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
	"github refresh token":         "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
	"github fine-grained PAT":      "github_pat_11ABCDEFG0123456789_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuV",
	"gitlab PAT":                   "glpat-xV3mKpW8rT2nQ9sYbF4h",
	"slack bot token":              "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
	"slack user token":             "xoxp-2237843120-2238915840-2239049283-6f5c1d7bde1f0b5a9e3c",
	"slack app token":              "xoxa-2-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
	"slack refresh token":          "xoxr-17653672481-pdFZKVeTuE8sk7oOcBrzbqgy",
	"stripe live secret key":       "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
	"stripe restricted key":        "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
	"aws access key id":            "AKIAIOSFODNN7EXAMPLE",
	"aws temporary key id":         "ASIAJEXAMPLEXEG2JICE",
	"aws secret access key":        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"aws session token":            "FwoGZXIvYXdzEBYaDHqa0AP7Xy2sVMRJCiKsAUz5E0WnGj3XbMCrKLFoM8wNQh8KZ1Zp4TxU6Yb2WJ",
	"google access token":          "ya29.a0AfH6SMBx2zD5oQ1pZ7yR9kL3mN8vB4cT6wX0sA2fH5jK7lP9qR1tU3vW5xY7zA9bC1dE3fG",
	"google refresh token":         "1//0gLaS4cJ2x9kL3mN8vB4cT6wX0sA2fH5jK7lP9qR1tU3vW5xY7zA9bC1d",
	"jwt":                          "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
	"jwe":                          "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGe.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji.XFBoMYUZodetZdvTiFvSkQ",
	"box access token (docs)":      "T9cE5asGnuyYCCqIZFoWjFHvNbvVqHjl",
	"box-style 32-char token":      "c3FIOG9vSGV4VHJ1bHJLcW4zaDdtQmdJ",
	"reference token API token":    "q0B3pVbS9nIc7tYx_1kEwRf2LmZ8uJg4HdA6oTsXyN5",
	"okta API token":               "00QCjAl4MlV-WPXM8vBq5tX3yZ7nR1kL2mP0sD4uAe",
	"openai project key":           "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
	"anthropic key":                "sk-ant-api03-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
	"npm token":                    "npm_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z0123",
	"digitalocean token (hex)":     "dop_v1_" + strings.Repeat("8f3a2b1c", 8),
	"authorization header value":   "Bearer abc.def",
	"fingerprint prefix, raw rest": "tfp_q0B3pVbS9nIc7tYx_1kEwRf2LmZ8uJg4HdA6oTsXyN5",
}

// Ids in the formats IdPs and this project use, each of which must be
// accepted as a token id without any pattern set.
var idFormats = map[string]string{
	"fingerprint":              Fingerprint("some raw token"),
	"simulator fingerprint":    Fingerprint("simulated-token/1/42"),
	"short test id":            "tfp_abc",
	"uuid v4":                  "3f2b8c1e-6d4a-4b7e-9c2d-1a5e7f9b0c3d",
	"uuid upper":               "3F2B8C1E-6D4A-4B7E-9C2D-1A5E7F9B0C3D",
	"uuid without dashes":      "3f2b8c1e6d4a4b7e9c2d1a5e7f9b0c3d",
	"sha-256 hex":              "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	"ulid":                     "01ARZ3NDEKTSV4RRFFQ69G5FAV",
	"mongodb object id":        "507f1f77bcf86cd799439011",
	"snowflake":                "1541815603606036480",
	"azure uti":                "AbCdEfGhIjKlMnOpQrStUv",
	"okta object id":           "00u1abcd2EFGH3ijk4l5",
	"auth0 style":              "auth0|5f7c8ec7c33c6c004bbafe82",
	"keycloak urn":             "urn:keycloak:token:3f2b8c1e-6d4a-4b7e-9c2d-1a5e7f9b0c3d",
	"readable":                 "session-for-alice-laptop-2026",
	"readable with time":       "u-alice:session:2026-11-24T09:00:00Z",
	"camel case":               "AccessTokenForUserAliceOnDevice42",
	"camel case with version":  "MyApp_AccessToken_Version2_Build1234",
	"service account path":     "projects/my-project/serviceAccounts/sa-1/keys/Key42",
	"kebab with region":        "Production-EU-West-1-TokenRecord-42",
	"k8s style":                "K8sServiceAccountTokenDefaultNs2",
	"request handler":          "GetUserProfileRequestV2Handler1",
	"base32 digest (upper)":    strings.TrimRight(base32.StdEncoding.EncodeToString(sha256.New().Sum(nil)), "="),
	"numeric with dashes":      "2026-11-24-000000001234567",
	"stripe-like without live": "tok_1N3T00LkdIwHu7ix",
}

func TestTokenIDProblemRefusesSecrets(t *testing.T) {
	for name, v := range secretFormats {
		t.Run(name, func(t *testing.T) {
			reason := TokenIDProblem(v)
			if reason == "" {
				t.Fatalf("accepted %q as a token id", v)
			}
			if strings.Contains(reason, v) {
				t.Errorf("reason %q quotes the value", reason)
			}
		})
	}
}

func TestTokenIDProblemAcceptsIDs(t *testing.T) {
	for name, v := range idFormats {
		t.Run(name, func(t *testing.T) {
			if reason := TokenIDProblem(v); reason != "" {
				t.Fatalf("refused %q: %s", v, reason)
			}
		})
	}
}

func TestIsFingerprint(t *testing.T) {
	for i := range 1000 {
		if fp := Fingerprint(fmt.Sprint(i)); !IsFingerprint(fp) {
			t.Fatalf("IsFingerprint(%q) = false", fp)
		}
	}
	for _, s := range []string{"", "tfp_", "tfp_abc", "tfp_c2Vjb25kdG9rZW5maW5nZXI", "tfp_c2Vjb25kdG9rZW5maW5nZB", "tfp_c2Vjb25kdG9rZW5maW5n+A", "TFP_c2Vjb25kdG9rZW5maW5nZA"} {
		if IsFingerprint(s) {
			t.Errorf("IsFingerprint(%q) = true", s)
		}
	}
}

// TestLooksRandomMeasured is where the thresholds of LooksRandom come from:
// it draws random secrets of the lengths in use and ids of the formats that
// must pass, and fails when the share of secrets that slip through, or any
// id refused, exceeds what the constants' comments promise. Run it with -v
// to see the measured rates.
func TestLooksRandomMeasured(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	const base62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	const draws = 20000
	drawBase62 := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = base62[r.IntN(len(base62))]
		}
		return string(b)
	}
	drawBase64URL := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return base64.RawURLEncoding.EncodeToString(b)[:n]
	}
	// Most secrets are 32 characters or longer; a miss at 24 is a
	// 24-character secret, rare and short-lived.
	maxMiss := map[int]float64{24: 0.005, 32: 0.002, 43: 0.0005, 64: 0.0001, 128: 0.0001}
	for _, n := range []int{24, 32, 43, 64, 128} {
		for alphabet, draw := range map[string]func(int) string{"base62": drawBase62, "base64url": drawBase64URL} {
			missed := 0
			for range draws {
				if !LooksRandom(draw(n)) {
					missed++
				}
			}
			rate := float64(missed) / draws
			t.Logf("random %s of %d characters: %.3f%% not refused (threshold %.2f bits)", alphabet, n, 100*rate, randomThreshold(n))
			if rate > maxMiss[n] {
				t.Errorf("random %s of %d characters: %.3f%% not refused, want at most %.3f%%", alphabet, n, 100*rate, 100*maxMiss[n])
			}
		}
	}
	// The reference token API's raw tokens (32 random bytes, base64url)
	// and Box-style tokens (32 base62 characters) specifically.
	for name, draw := range map[string]func() string{
		"token API token": func() string { return drawBase64URL(43) },
		"box-style token": func() string { return drawBase62(32) },
	} {
		missed := 0
		for range draws {
			if TokenIDProblem(draw()) == "" {
				missed++
			}
		}
		t.Logf("%s: %d of %d not refused", name, missed, draws)
		if float64(missed)/draws > 0.002 {
			t.Errorf("%s: %d of %d not refused", name, missed, draws)
		}
	}
	// Ids that must always pass.
	hexID := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return hex.EncodeToString(b)
	}
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	for name, draw := range map[string]func() string{
		"uuid": func() string {
			h := hexID(16)
			return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + h[16:20] + "-" + h[20:]
		},
		"upper uuid": func() string {
			h := strings.ToUpper(hexID(16))
			return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		},
		"hex digest":  func() string { return hexID(32) },
		"fingerprint": func() string { return Fingerprint(hexID(8)) },
		"ulid": func() string {
			b := make([]byte, 26)
			for i := range b {
				b[i] = crockford[r.IntN(len(crockford))]
			}
			return string(b)
		},
		"snowflake": func() string { return fmt.Sprint(r.Uint64() >> 1) },
	} {
		for range draws / 10 {
			if v := draw(); TokenIDProblem(v) != "" {
				t.Fatalf("%s %q refused: %s", name, v, TokenIDProblem(v))
			}
		}
	}
}

func TestTokenIDPattern(t *testing.T) {
	t.Cleanup(func() { _ = SetTokenIDPattern("") })
	const uuid = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	if err := SetTokenIDPattern(uuid); err != nil {
		t.Fatal(err)
	}
	if got := TokenIDPattern(); got != uuid {
		t.Errorf("TokenIDPattern() = %q, want %q", got, uuid)
	}
	for v, ok := range map[string]bool{
		Fingerprint("x"):                        true,  // fingerprints always
		"3f2b8c1e-6d4a-4b7e-9c2d-1a5e7f9b0c3d":  true,  // matches
		"x3f2b8c1e-6d4a-4b7e-9c2d-1a5e7f9b0c3d": false, // anchored
		"tok-1":                                 false, // no match
		"tfp_abc":                               false, // not a well-formed fingerprint
	} {
		if got := TokenIDProblem(v) == ""; got != ok {
			t.Errorf("with pattern, TokenIDProblem(%q) accepted %v, want %v", v, got, ok)
		}
	}

	// A pattern accepting random ids (KSUIDs, say) lets them through, but
	// never a value in the shape of a secret.
	if err := SetTokenIDPattern(`.*`); err != nil {
		t.Fatal(err)
	}
	if p := TokenIDProblem("0ujtsYcgvSTl8PAuAdqWYSMnLOv"); p != "" {
		t.Errorf("KSUID refused with pattern .*: %s", p)
	}
	for name, v := range secretFormats {
		if SecretKind(v) == "" {
			continue
		}
		if TokenIDProblem(v) == "" {
			t.Errorf("%s accepted because it matches the pattern", name)
		}
	}

	err := SetTokenIDPattern(`[a-z`)
	if !errors.Is(err, ErrTokenIDPattern) {
		t.Fatalf("bad pattern: %v, want ErrTokenIDPattern", err)
	}
	if got := TokenIDPattern(); got != `.*` {
		t.Errorf("a bad pattern replaced the pattern in force: %q", got)
	}
}

// The decoders refuse secret token ids naming the field, and never quote
// the value in the error.
func TestDecodeRefusesSecretTokenIDs(t *testing.T) {
	secret := secretFormats["reference token API token"]
	ev := fmt.Sprintf(`{"id":"e","time":"2026-11-24T09:00:00Z","type":"token.exchanged","user_id":"u","token_id":%q,"parent_token_id":%q}`,
		secretFormats["ory access token (hydra v2)"], secret)
	_, err := DecodeEvent([]byte(ev))
	var fields []string
	collectFields(err, &fields)
	if !strings.Contains(strings.Join(fields, ","), "token_id,parent_token_id") {
		t.Errorf("error %v names %q, want token_id and parent_token_id", err, fields)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "bzzHIqUZ") {
		t.Errorf("error quotes the value: %v", err)
	}

	cmd := fmt.Sprintf(`{"command_id":"c","issued_at":"2026-11-24T09:00:05Z","expires_at":"2026-11-24T10:00:05Z","issuer":"d","target":{"kind":"token","token_id":%q,"include_downscoped":false},"action":"revoke","mode":"enforce","reason":{"rule_id":"r","rule_version":1,"severity":"high","summary":""}}`, secret)
	_, err = DecodeCommand([]byte(cmd))
	fields = nil
	collectFields(err, &fields)
	if len(fields) != 1 || fields[0] != "target.token_id" || strings.Contains(err.Error(), secret) {
		t.Errorf("DecodeCommand: %v (fields %q)", err, fields)
	}

	// The dead-letter copy can hold the fingerprint instead.
	red, paths := RedactTokenIDs([]byte(cmd))
	if strings.Join(paths, ",") != "target.token_id" || strings.Contains(string(red), secret) || !strings.Contains(string(red), Fingerprint(secret)) {
		t.Errorf("RedactTokenIDs: %s %q", red, paths)
	}
	if red, paths := RedactTokenIDs([]byte(`{"token_id":"tok-1"}`)); paths != nil || string(red) != `{"token_id":"tok-1"}` {
		t.Errorf("RedactTokenIDs changed an id: %s %q", red, paths)
	}
}

func TestTokenIDProblemDoesNotAllocate(t *testing.T) {
	for _, v := range []string{
		Fingerprint("x"), idFormats["uuid v4"], idFormats["camel case"],
		secretFormats["reference token API token"], secretFormats["github oauth token"], secretFormats["jwt"],
	} {
		if n := testing.AllocsPerRun(100, func() { _ = TokenIDProblem(v) != "" }); n != 0 && SecretKind(v) == "" && !LooksRandom(v) {
			t.Errorf("TokenIDProblem(%.12q…) allocates %v times", v, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = LooksRandom(v) || IsFingerprint(v) || SecretKind(v) != "" }); n != 0 {
			t.Errorf("checks of %.12q… allocate %v times", v, n)
		}
	}
}

// secretSchemaPattern is the "not" pattern the JSON Schema files put on
// every token id: SecretKind's rules as one regular expression.
func secretSchemaPattern() string {
	alts := []string{`eyJ[^.]*\.`, `(AKIA|ASIA)[A-Z0-9]{16}$`}
	for _, p := range secretPrefixes {
		alts = append(alts, regexp.QuoteMeta(p.Prefix))
	}
	return "^(" + strings.Join(alts, "|") + ")"
}

// TestJSONSchemaTokenIDPattern keeps the schema files' token id rule the
// same as SecretKind's.
func TestJSONSchemaTokenIDPattern(t *testing.T) {
	want := secretSchemaPattern()
	re := regexp.MustCompile(want)
	for name, v := range secretFormats {
		if (SecretKind(v) != "") != re.MatchString(v) {
			t.Errorf("%s: SecretKind and the schema pattern disagree", name)
		}
	}
	for name, v := range idFormats {
		if re.MatchString(v) {
			t.Errorf("%s: the schema pattern refuses an id", name)
		}
	}
	for file, paths := range map[string][][]string{
		"jsonschema/audit-event.v1.json":    {{"properties", "token_id"}, {"properties", "parent_token_id"}},
		"jsonschema/revoke-command.v1.json": {{"properties", "target", "properties", "token_id"}},
	} {
		data, err := JSONSchemas.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			node := doc
			for _, k := range path {
				node, _ = node[k].(map[string]any)
			}
			not, _ := node["not"].(map[string]any)
			if got, _ := not["pattern"].(string); got != want {
				t.Errorf("%s %s: not.pattern is %q, want %q", file, strings.Join(path, "."), got, want)
			}
		}
	}
}

func BenchmarkTokenIDProblem(b *testing.B) {
	for name, v := range map[string]string{
		"fingerprint": Fingerprint("x"),
		"uuid":        idFormats["uuid v4"],
		"random43":    secretFormats["reference token API token"],
		"prefix":      secretFormats["github oauth token"],
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				_ = TokenIDProblem(v)
			}
		})
	}
}
