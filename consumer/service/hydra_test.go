package service_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/revoked-dev/revoked/consumer/audit/memstore"
	"github.com/revoked-dev/revoked/consumer/idp"
	"github.com/revoked-dev/revoked/consumer/service"
	"github.com/revoked-dev/revoked/internal/config"
	"github.com/revoked-dev/revoked/internal/testenv/hydratest"
	"github.com/revoked-dev/revoked/schemas"
)

// hydraCase is one command carried out through the Hydra preset against a
// real Ory Hydra, with the tokens it targets and the outcome the trail
// must show. Hydra's own introspection is the judge: an outcome that
// records a revocation (confirmed or unconfirmed) while a targeted token
// is still active fails the test, whatever the outcome was meant to be.
type hydraCase struct {
	name    string
	cmd     schemas.RevokeCommand
	want    schemas.Step
	revoked []string // targeted tokens that must end inactive
	// active are tokens that must stay active: bystanders, or, in a case
	// whose outcome is not effective, what Hydra's calls leave active.
	active []string
}

// TestHydra drives the consumer, with the Hydra preset as shipped, through
// the cases where Hydra answers success without revoking, and checks every
// outcome with Hydra's introspection.
func TestHydra(t *testing.T) {
	h := hydratest.New(t)
	f := newFixture(t, memstore.New())
	self := h.NewClient(t, hydratest.ClientConfig{GrantTypes: []string{"client_credentials"}})
	app := h.NewClient(t, hydratest.ClientConfig{})
	web := h.NewClient(t, hydratest.ClientConfig{})
	batch := h.NewClient(t, hydratest.ClientConfig{GrantTypes: []string{"client_credentials"}})
	partner := h.NewClient(t, hydratest.ClientConfig{})
	machines := h.NewClient(t, hydratest.ClientConfig{GrantTypes: []string{"client_credentials"}})

	// The admin API through a proxy the test can take down.
	adminProxy := newProxy(t, strings.TrimPrefix(h.Admin, "http://"))
	client := hydraClient(t, h, self, "http://"+adminProxy.addr, nil)
	f.client = client

	sealed := func(raw string) schemas.Target {
		s, err := schemas.SealToken(raw, f.seal.Public)
		if err != nil {
			t.Fatal(err)
		}
		return schemas.Target{Kind: schemas.TargetToken, TokenID: schemas.Fingerprint(raw), SealedToken: s}
	}
	now := time.Now()
	aliceID := hydratest.UniqueSubject(t, "alice")
	alice, aliceWeb := app.AuthorizationCode(t, aliceID), web.AuthorizationCode(t, aliceID)
	bob := hydratest.UniqueSubject(t, "bob")
	bobApp, bobWeb := app.AuthorizationCode(t, bob), web.AuthorizationCode(t, bob)
	dave := hydratest.UniqueSubject(t, "dave")
	daveApp := app.AuthorizationCode(t, dave)
	erin := hydratest.UniqueSubject(t, "erin")
	erinApp := app.AuthorizationCode(t, erin)
	partnerUser := partner.AuthorizationCode(t, hydratest.UniqueSubject(t, "frank"))
	batchToken := batch.ClientCredentials(t)
	machineToken := machines.ClientCredentials(t)
	bystander := app.AuthorizationCode(t, hydratest.UniqueSubject(t, "grace"))

	cases := []hydraCase{{
		// RFC 7009 from the consumer's client is refused silently (200);
		// introspection shows the token active, and the preset's
		// fallback revokes the user's consent for that client.
		name: "logout by raw token, the consumer not the token's client",
		cmd:  command(sealed(alice.AccessToken), now), want: schemas.StepConfirmed,
		revoked: []string{alice.AccessToken, alice.RefreshToken}, active: []string{aliceWeb.AccessToken},
	}, {
		name: "user subject",
		cmd:  command(schemas.Target{Kind: schemas.TargetUser, UserID: bob}, now), want: schemas.StepUnconfirmed,
		revoked: []string{bobApp.AccessToken, bobApp.RefreshToken, bobWeb.AccessToken, bobWeb.RefreshToken},
	}, {
		// A client that holds refresh tokens: Hydra's client call
		// revokes its access tokens and leaves the refresh tokens.
		name: "client with refresh tokens",
		cmd:  command(schemas.Target{Kind: schemas.TargetClient, ClientID: partner.ID}, now), want: schemas.StepNotEffective,
		revoked: []string{partnerUser.AccessToken}, active: []string{partnerUser.RefreshToken},
	}, {
		name: "client with client credentials only",
		cmd:  command(schemas.Target{Kind: schemas.TargetClient, ClientID: machines.ID}, now), want: schemas.StepUnconfirmed,
		revoked: []string{machineToken.AccessToken},
	}, {
		// Hydra's session call ends the login session only; the preset
		// falls back to the subject-wide call, which needs the user.
		name: "session with its user",
		cmd:  command(schemas.Target{Kind: schemas.TargetSession, SessionID: daveApp.SessionID, UserID: dave}, now), want: schemas.StepUnconfirmed,
		revoked: []string{daveApp.AccessToken, daveApp.RefreshToken},
	}, {
		name: "session without its user",
		cmd:  command(schemas.Target{Kind: schemas.TargetSession, SessionID: erinApp.SessionID}, now), want: schemas.StepNotEffective,
		active: []string{erinApp.AccessToken, erinApp.RefreshToken},
	}, {
		// A client-credentials token's subject is its client: the
		// subject-wide call leaves it, the client lookup finds the
		// client and the client call revokes it.
		name: "client-credentials subject",
		cmd:  command(schemas.Target{Kind: schemas.TargetUser, UserID: batch.ID}, now), want: schemas.StepUnconfirmed,
		revoked: []string{batchToken.AccessToken},
	}}
	for i := range cases {
		cases[i].cmd.CommandID += "-" + strings.ReplaceAll(cases[i].name, " ", "-")
		f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, cases[i].cmd))
	}
	stop := f.start(t, f.config("g-hydra"))
	for _, c := range cases {
		waitTerminal(t, f, c.name, c.cmd.CommandID)
	}

	// Hydra down and back: the command fails transiently while the
	// admin API is unreachable and is carried out once it returns.
	adminProxy.down()
	downUser := hydratest.UniqueSubject(t, "heidi")
	down := app.AuthorizationCode(t, downUser)
	downCase := hydraCase{name: "Hydra down and back", cmd: command(schemas.Target{Kind: schemas.TargetUser, UserID: downUser}, time.Now()),
		want: schemas.StepUnconfirmed, revoked: []string{down.AccessToken, down.RefreshToken}}
	downCase.cmd.CommandID += "-down"
	f.kafka.Produce(t, schemas.TopicRevokeCommands, f.message(t, downCase.cmd))
	f.rows.Wait(t, "a failed attempt while Hydra is down", func(rows []schemas.AuditRow) bool {
		return countStep(rows, downCase.cmd.CommandID, schemas.StepFailed) > 0
	})
	if h.Introspect(t, down.AccessToken).Active != true {
		t.Fatal("the token died while Hydra's admin API was unreachable")
	}
	adminProxy.up()
	waitTerminal(t, f, downCase.name, downCase.cmd.CommandID)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	for _, c := range append(cases, downCase) {
		got := terminal(t, f, c.cmd.CommandID)
		if got != c.want {
			t.Errorf("%s: outcome %s, want %s (proof %q)", c.name, got, c.want, proofOf(t, f, c.cmd.CommandID))
		}
		for i, tok := range c.revoked {
			if h.Introspect(t, tok).Active {
				t.Errorf("%s: targeted token %d still active at Hydra", c.name, i)
			}
		}
		for i, tok := range c.active {
			if !h.Introspect(t, tok).Active {
				t.Errorf("%s: token %d that must stay active was revoked", c.name, i)
			}
		}
		t.Logf("%s: %s: %s", c.name, got, proofOf(t, f, c.cmd.CommandID))
	}
	if !h.Introspect(t, bystander.AccessToken).Active {
		t.Error("an untargeted user's token was revoked")
	}
	if n := len(f.kafka.Records(t, schemas.TopicDLQ)); n != 2 {
		t.Errorf("%d dead letters, want the 2 not effective commands", n)
	}

	// Without the preset's fallback, the logout is not effective: Hydra
	// said 200 and the token is alive.
	t.Run("logout without fallback", func(t *testing.T) {
		g := newFixture(t, memstore.New())
		g.client = hydraClient(t, h, self, h.Admin, func(c *idp.Config) { c.Admin.Escalate.Token = []string{} })
		tok := app.AuthorizationCode(t, hydratest.UniqueSubject(t, "ivan"))
		s, err := schemas.SealToken(tok.AccessToken, g.seal.Public)
		if err != nil {
			t.Fatal(err)
		}
		c := command(schemas.Target{Kind: schemas.TargetToken, TokenID: schemas.Fingerprint(tok.AccessToken), SealedToken: s}, time.Now())
		g.kafka.Produce(t, schemas.TopicRevokeCommands, g.message(t, c))
		stop := g.start(t, g.config("g-hydra-nofallback"))
		waitTerminal(t, g, "the logout", c.CommandID)
		_ = stop()
		if got := terminal(t, g, c.CommandID); got != schemas.StepNotEffective || !h.Introspect(t, tok.AccessToken).Active {
			t.Errorf("outcome %s, token active %v", got, h.Introspect(t, tok.AccessToken).Active)
		}
	})
}

// hydraClient is the consumer's client of the Hydra preset: client
// secret authentication as self, the admin API at admin.
func hydraClient(t *testing.T, h *hydratest.Hydra, self *hydratest.Client, admin string, edit func(*idp.Config)) *idp.Client {
	t.Helper()
	cfg := idp.HydraPreset(h.Public+"/", admin)
	cfg.ClientID, cfg.ClientSecret = self.ID, config.NewSecret(self.Secret)
	cfg.AuthMethod, cfg.AssertionAudience = idp.AuthClientSecretBasic, ""
	cfg.Timeout = 2 * time.Second
	cfg.Breaker.Cooldown = 100 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	c, err := idp.New(cfg, service.NewHTTPClient(8), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// terminal returns the command's terminal step, or "" while it has none.
// waitTerminal waits until a consumer of f has written the command's
// terminal row (its observer sees rows once durable in f's store).
func waitTerminal(t *testing.T, f *fixture, what, commandID string) {
	t.Helper()
	f.rows.Wait(t, what, func(rows []schemas.AuditRow) bool {
		for _, r := range rows {
			if r.CommandID == commandID && r.Step.Terminal() {
				return true
			}
		}
		return false
	})
}

func terminal(t *testing.T, f *fixture, commandID string) schemas.Step {
	t.Helper()
	for s, n := range steps(t, f.store, commandID) {
		if n > 0 && s.Terminal() {
			return s
		}
	}
	return ""
}

func proofOf(t *testing.T, f *fixture, commandID string) string {
	t.Helper()
	rows, err := f.store.CommandRows(t.Context(), commandID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Step.Terminal() {
			return strings.TrimSpace(r.Proof + " | " + r.IdPResponse)
		}
	}
	return ""
}

// proxy forwards TCP connections to a backend until it is taken down:
// then its address refuses connections, as a stopped server's would.
type proxy struct {
	t       *testing.T
	addr    string
	backend string
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
}

func newProxy(t *testing.T, backend string) *proxy {
	p := &proxy{t: t, backend: backend}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", p.backend)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			go func() { _, _ = io.Copy(c, b); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}
