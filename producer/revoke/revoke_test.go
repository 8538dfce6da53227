package revoke

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/schemas"
)

type memPublisher struct{ msgs []kafkax.Message }

func (p *memPublisher) WriteMessages(_ context.Context, msgs ...kafkax.Message) error {
	p.msgs = append(p.msgs, msgs...)
	return nil
}

type failPublisher struct{}

func (failPublisher) WriteMessages(context.Context, ...kafkax.Message) error {
	return errors.New("no brokers")
}

func header(m kafkax.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

type fixture struct {
	signer *schemas.Signer
	seal   *schemas.SealKey
	pub    *memPublisher
	logs   *bytes.Buffer
	r      *Revoker
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	seal, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{signer: schemas.NewSigner(priv), seal: seal, pub: &memPublisher{}, logs: &bytes.Buffer{}}
	cfg := DefaultConfig()
	cfg.Operator = "alice@example.com"
	cfg.SealPublicKey = seal.PublicBase64()
	f.r, err = New(cfg, f.signer, f.pub, zerolog.New(f.logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rawToken looks like a JWT, the kind of value that must never leak.
const rawToken = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlLWJ5dGVz"

func TestRevokeRawTokenIsSealedAndSigned(t *testing.T) {
	f := newFixture(t)
	req := Request{
		Kind:              schemas.TargetToken,
		UserID:            "user-42",
		RawToken:          config.NewSecret(rawToken + "\n"),
		IncludeDownscoped: true,
		Action:            schemas.ActionRevokeAndReverify,
		Summary:           "laptop stolen",
		TTL:               30 * time.Minute,
	}
	if s := fmt.Sprintf("%v %+v", req, req); strings.Contains(s, rawToken) {
		t.Fatal("a Request must not print its raw token")
	}
	cmd, err := f.r.Revoke(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.pub.msgs) != 1 {
		t.Fatalf("published %d messages", len(f.pub.msgs))
	}
	m := f.pub.msgs[0]
	if m.Topic != schemas.TopicRevokeCommands || string(m.Key) != "user-42" {
		t.Errorf("topic %q key %q", m.Topic, m.Key)
	}
	if err := schemas.NewKeyring(f.signer.Public()).Verify(header(m, schemas.HeaderKeyID), header(m, schemas.HeaderSignature), m.Value); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if header(m, schemas.HeaderSchema) != schemas.SchemaRevokeCommandV1 {
		t.Error("schema header missing")
	}
	if bytes.Contains(m.Value, []byte(rawToken)) || bytes.Contains(f.logs.Bytes(), []byte(rawToken)) {
		t.Fatal("the raw token appears in the clear")
	}
	for _, h := range m.Headers {
		if strings.Contains(string(h.Value), rawToken) {
			t.Fatal("the raw token appears in a header")
		}
	}
	got, err := schemas.DecodeCommand(m.Value)
	if err != nil {
		t.Fatalf("published command does not decode: %v", err)
	}
	opened, err := f.seal.Open(got.Target.SealedToken)
	if err != nil || opened != rawToken {
		t.Fatalf("sealed token opens to %q, %v", opened, err)
	}
	if got.Target.TokenID != schemas.Fingerprint(rawToken) {
		t.Errorf("token_id %q, want the fingerprint", got.Target.TokenID)
	}
	if !regexp.MustCompile(`^cmd_[0-9a-f]{32}$`).MatchString(got.CommandID) {
		t.Errorf("command id %q", got.CommandID)
	}
	if got.Issuer != "manual:alice@example.com" || got.Reason.RuleID != "manual" || got.Reason.Summary != "laptop stolen" ||
		got.Action != schemas.ActionRevokeAndReverify || got.Mode != schemas.ModeEnforce || !got.Target.IncludeDownscoped {
		t.Errorf("unexpected command %+v", got)
	}
	if d := got.ExpiresAt.Sub(got.IssuedAt); d != 30*time.Minute {
		t.Errorf("ttl %s", d)
	}
	if got.CommandID != cmd.CommandID {
		t.Error("returned and published commands differ")
	}
	if !strings.Contains(f.logs.String(), cmd.CommandID) {
		t.Error("publication not logged")
	}
}

func TestRevokeTargets(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		req     Request
		key, id string
	}{
		{Request{Kind: schemas.TargetUser, UserID: "u1", DryRun: true}, "u1", "u1"},
		{Request{Kind: schemas.TargetToken, TokenID: "tfp_abc"}, "tfp_abc", "tfp_abc"},
		{Request{Kind: schemas.TargetSession, SessionID: "s1"}, "s1", "s1"},
		{Request{Kind: schemas.TargetSession, SessionID: "s1", UserID: "u2"}, "u2", "s1"},
		{Request{Kind: schemas.TargetClient, ClientID: "c1"}, "c1", "c1"},
	} {
		cmd, err := f.r.Build(c.req)
		if err != nil {
			t.Fatalf("%+v: %v", c.req, err)
		}
		if cmd.Target.Key() != c.key || cmd.Target.ID() != c.id {
			t.Errorf("%+v: key %q id %q", c.req, cmd.Target.Key(), cmd.Target.ID())
		}
		if c.req.DryRun != (cmd.Mode == schemas.ModeDryRun) {
			t.Errorf("%+v: mode %s", c.req, cmd.Mode)
		}
		if cmd.Reason.Severity != schemas.SeverityHigh || cmd.Action != schemas.ActionRevoke {
			t.Errorf("defaults not applied: %+v", cmd)
		}
	}
	a, _ := f.r.Build(Request{Kind: schemas.TargetUser, UserID: "u1"})
	b, _ := f.r.Build(Request{Kind: schemas.TargetUser, UserID: "u1"})
	if a.CommandID == b.CommandID {
		t.Error("command ids must be random")
	}
}

func TestBuildRejects(t *testing.T) {
	f := newFixture(t)
	for name, req := range map[string]Request{
		"no kind":         {UserID: "u1"},
		"user without id": {Kind: schemas.TargetUser},
		"token mismatch":  {Kind: schemas.TargetToken, TokenID: "tfp_other", RawToken: config.NewSecret(rawToken)},
		"raw on user":     {Kind: schemas.TargetUser, UserID: "u1", RawToken: config.NewSecret(rawToken)},
		"jwt as token id": {Kind: schemas.TargetToken, TokenID: rawToken},
		"ttl too long":    {Kind: schemas.TargetUser, UserID: "u1", TTL: 30 * 24 * time.Hour},
		"bad action":      {Kind: schemas.TargetUser, UserID: "u1", Action: "delete"},
	} {
		_, err := f.r.Build(req)
		if !errors.Is(err, ErrRequest) {
			t.Errorf("%s: want ErrRequest, got %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), rawToken) {
			t.Errorf("%s: error reveals the raw token", name)
		}
	}
}

func TestRawTokenNeedsSealKey(t *testing.T) {
	priv, _ := schemas.GenerateSigningKey()
	cfg := DefaultConfig()
	cfg.Operator = "bob"
	r, err := New(cfg, schemas.NewSigner(priv), &memPublisher{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Build(Request{Kind: schemas.TargetToken, RawToken: config.NewSecret(rawToken)}); !errors.Is(err, ErrNoSealKey) {
		t.Fatalf("want ErrNoSealKey, got %v", err)
	}
}

func TestPublishFailure(t *testing.T) {
	priv, _ := schemas.GenerateSigningKey()
	cfg := DefaultConfig()
	cfg.Operator = "bob"
	r, _ := New(cfg, schemas.NewSigner(priv), failPublisher{}, zerolog.Nop())
	if _, err := r.Revoke(t.Context(), Request{Kind: schemas.TargetUser, UserID: "u1"}); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Operator: "a b", SealPublicKey: "nope"}.Validate()
	for _, f := range []string{"topic", "operator", "ttl", "seal-public-key"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error lacks %q: %v", f, err)
		}
	}
}

// A Revoker seals every raw token of its run with one ephemeral key (a
// session box), which the consumer's key opens.
func TestRevokerSealsWithOneEphemeralKey(t *testing.T) {
	f := newFixture(t)
	var ephemeral []string
	for i, raw := range []string{rawToken, rawToken + "-2", rawToken} {
		cmd, err := f.r.Build(Request{Kind: schemas.TargetToken, RawToken: config.NewSecret(raw)})
		if err != nil {
			t.Fatal(err)
		}
		sealed, ok := strings.CutPrefix(cmd.Target.SealedToken, "v2.")
		if !ok {
			t.Fatalf("command %d: sealed token is not a session box", i)
		}
		data, err := base64.StdEncoding.DecodeString(sealed)
		if err != nil || len(data) < 32 {
			t.Fatalf("command %d: sealed token: %v", i, err)
		}
		ephemeral = append(ephemeral, string(data[:32]))
		if opened, err := f.seal.Open(cmd.Target.SealedToken); err != nil || opened != raw {
			t.Fatalf("command %d: opens to %q, %v", i, opened, err)
		}
	}
	if ephemeral[0] != ephemeral[1] || ephemeral[1] != ephemeral[2] {
		t.Error("one Revoker sealed with more than one ephemeral key")
	}
	other := newFixture(t)
	cmd, err := other.r.Build(Request{Kind: schemas.TargetToken, RawToken: config.NewSecret(rawToken)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(cmd.Target.SealedToken, "v2."))
	if err != nil || len(data) < 32 || string(data[:32]) == ephemeral[0] {
		t.Errorf("two Revokers share an ephemeral key (%v)", err)
	}
}

// A sealing public key of low order, to which anyone could seal and which
// would make sealed tokens readable by anyone, is refused.
func TestLowOrderSealKeyRefused(t *testing.T) {
	priv, _ := schemas.GenerateSigningKey()
	cfg := DefaultConfig()
	cfg.Operator = "bob"
	cfg.SealPublicKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
	if _, err := New(cfg, schemas.NewSigner(priv), &memPublisher{}, zerolog.Nop()); err == nil {
		t.Fatal("New took a sealing public key of low order")
	}
}
