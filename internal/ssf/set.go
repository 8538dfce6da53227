package ssf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// MaxSETBytes bounds one SET (or client assertion) as received: larger
// ones are refused before any parsing.
const MaxSETBytes = 64 << 10

// Audience is a JWT "aud" claim: one string, or an array of strings.
type Audience []string

// MarshalJSON writes one audience as a string, several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audience) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// Contains reports whether aud names v.
func (a Audience) Contains(v string) bool { return v != "" && slices.Contains(a, v) }

// NumericDate is a JWT NumericDate: seconds since the epoch, which may
// arrive with a fraction; it is written as an integer.
type NumericDate int64

// UnmarshalJSON reads a JSON number.
func (d *NumericDate) UnmarshalJSON(data []byte) error {
	var f float64
	if err := json.Unmarshal(data, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return fmt.Errorf("not a NumericDate")
	}
	*d = NumericDate(int64(f))
	return nil
}

// Time is d as a time.Time (the zero time for 0).
func (d NumericDate) Time() time.Time {
	if d == 0 {
		return time.Time{}
	}
	return time.Unix(int64(d), 0).UTC()
}

// Claims are the claims of an SSF SET (RFC 8417 section 2.2 as SSF 1.0
// section 4.1 profiles them). Additional claims a transmitter adds are
// ignored, as SSF 1.0 section 4.2.3 asks of receivers.
type Claims struct {
	Issuer   string      `json:"iss"`
	ID       string      `json:"jti"`
	IssuedAt NumericDate `json:"iat"`
	Audience Audience    `json:"aud,omitempty"`
	// Txn links SETs of one cause (SSF 1.0 section 4.1.9).
	Txn string `json:"txn,omitempty"`
	// SubID is the subject principal (SSF 1.0 section 4.1.2); RISC
	// transmitters that predate it put a "subject" in the event instead.
	SubID *Subject `json:"sub_id,omitempty"`
	// Events maps event type URIs to their payloads; SSF SETs carry
	// one.
	Events map[string]json.RawMessage `json:"events"`
	// Expires and Sub must not appear in an SSF SET (SSF 1.0 sections
	// 4.1.3 and 4.1.6); they are read only to enforce an expiry that is
	// there anyway.
	Expires NumericDate `json:"exp,omitempty"`
}

// NewClaims returns the claims of a SET with one event of type
// eventType whose payload is the JSON of payload.
func NewClaims(iss, jti string, iat time.Time, aud Audience, txn string, sub Subject, eventType string, payload any) (Claims, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("encoding the %s payload: %w", eventType, err)
	}
	return Claims{
		Issuer: iss, ID: jti, IssuedAt: NumericDate(iat.Unix()), Audience: aud, Txn: txn, SubID: &sub,
		Events: map[string]json.RawMessage{eventType: b},
	}, nil
}

// ParseClaims decodes the payload of a verified SET. It checks the
// shape only; see Check for what a receiver must verify.
func ParseClaims(payload []byte) (Claims, error) {
	var c Claims
	if len(payload) > MaxSETBytes {
		return c, Errorf(ErrCodeInvalidRequest, "SET payload of %d bytes, limit %d", len(payload), MaxSETBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil {
		return c, Errorf(ErrCodeInvalidRequest, "SET claims: %v", err)
	}
	if dec.More() {
		return c, Errorf(ErrCodeInvalidRequest, "trailing data after the SET claims")
	}
	return c, nil
}

// Expect is what a receiver requires of a SET's claims.
type Expect struct {
	// Issuer must equal iss.
	Issuer string
	// Audience must be among aud.
	Audience string
	// MaxAge bounds how long ago iat may be (0: no bound).
	MaxAge time.Duration
	// Skew bounds how far in the future iat may be.
	Skew time.Duration
	// Now is the time of the check.
	Now time.Time
}

// Check verifies c against e and returns a *SETError naming the first
// problem: the issuer, the audience, a missing jti or event, an iat in
// the future or older than MaxAge, an expiry that passed.
func (c *Claims) Check(e Expect) error {
	switch {
	case c.Issuer != e.Issuer:
		return Errorf(ErrCodeInvalidIssuer, "iss %q is not the expected issuer %q", truncate(c.Issuer, 128), e.Issuer)
	case !c.Audience.Contains(e.Audience):
		return Errorf(ErrCodeInvalidAudience, "aud does not name %q", e.Audience)
	case c.ID == "":
		return Errorf(ErrCodeInvalidRequest, "jti is missing")
	case len(c.ID) > 256:
		return Errorf(ErrCodeInvalidRequest, "jti longer than 256 bytes")
	case c.IssuedAt == 0:
		return Errorf(ErrCodeInvalidRequest, "iat is missing")
	case c.IssuedAt.Time().After(e.Now.Add(e.Skew)):
		return Errorf(ErrCodeInvalidRequest, "iat %s is in the future", c.IssuedAt.Time().Format(time.RFC3339))
	case e.MaxAge > 0 && e.Now.Sub(c.IssuedAt.Time()) > e.MaxAge:
		return Errorf(ErrCodeInvalidRequest, "iat %s is older than %s", c.IssuedAt.Time().Format(time.RFC3339), e.MaxAge)
	case c.Expires != 0 && !e.Now.Before(c.Expires.Time().Add(e.Skew)):
		return Errorf(ErrCodeInvalidRequest, "expired at %s", c.Expires.Time().Format(time.RFC3339))
	case len(c.Events) == 0:
		return Errorf(ErrCodeInvalidRequest, "events is missing or empty")
	}
	return nil
}

// Event decodes the payload of eventType into v, reporting false when
// the SET carries no such event.
func (c *Claims) Event(eventType string, v any) (bool, error) {
	raw, ok := c.Events[eventType]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, Errorf(ErrCodeInvalidRequest, "payload of %s: %v", eventType, err)
	}
	return true, nil
}
