package revoke_test

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/internal/config"
	kafkax "github.com/revoked-dev/revoked/internal/kafka"
	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
	"github.com/revoked-dev/revoked/producer/revoke"
	"github.com/revoked-dev/revoked/schemas"
)

// TestRevokeThroughKafka publishes a sealed token revocation through the
// real Kafka writer and checks what a consumer would read.
func TestRevokeThroughKafka(t *testing.T) {
	c := kafkatest.New(t, schemas.TopicRevokeCommands)
	w, err := kafkax.NewWriter(c.WriterConfig(""), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	priv, err := schemas.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	seal, err := schemas.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := revoke.DefaultConfig()
	cfg.Operator = "oncall"
	cfg.SealPublicKey = seal.PublicBase64()
	r, err := revoke.New(cfg, schemas.NewSigner(priv), w, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	const raw = "opaque-access-token-0123456789"
	cmd, err := r.Revoke(t.Context(), revoke.Request{Kind: schemas.TargetToken, UserID: "u7", RawToken: config.NewSecret(raw), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs := c.WaitRecords(t, schemas.TopicRevokeCommands, 1)
	m := msgs[0]
	var keyID, sig string
	for _, h := range m.Headers {
		switch h.Key {
		case schemas.HeaderKeyID:
			keyID = string(h.Value)
		case schemas.HeaderSignature:
			sig = string(h.Value)
		}
	}
	if err := schemas.NewKeyring(schemas.NewSigner(priv).Public()).Verify(keyID, sig, m.Value); err != nil {
		t.Fatalf("signature read back from Kafka does not verify: %v", err)
	}
	if string(m.Key) != "u7" || strings.Contains(string(m.Value), raw) {
		t.Fatalf("key %q, value %s", m.Key, m.Value)
	}
	got, err := schemas.DecodeCommand(m.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got.CommandID != cmd.CommandID || got.Mode != schemas.ModeDryRun || got.Target.TokenID != schemas.Fingerprint(raw) {
		t.Fatalf("command %+v", got)
	}
	if opened, err := seal.Open(got.Target.SealedToken); err != nil || opened != raw {
		t.Fatalf("sealed token opens to %q, %v", opened, err)
	}
}
