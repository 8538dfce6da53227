package schemas

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"unicode/utf8"
)

// EventContext is where one evidence event of a command came from, as the
// detector saw it after enrichment: the event's address, and the country,
// autonomous system and kind of network of that address. A command carries
// one per evidence event whose address the detector still held when it
// built the command (Reason.Context); the audit trail keeps them
// (AuditRow.EvidenceContext) so analysts see where the events came from
// without the events themselves.
//
// The context is what the detector knew, not a fact about the event: the
// source's geo fields where it gave them, else the address databases of
// the detector that enriched it (their version of the day).
type EventContext struct {
	// EventID is the event's id, one of the reason's Evidence.
	EventID string `json:"event_id"`
	// IP is the event's address as netip prints it (no zone, an IPv4
	// address mapped into IPv6 unmapped).
	IP string `json:"ip"`
	// Country is the ISO 3166-1 alpha-2 code of the address's country.
	Country string `json:"country,omitempty"`
	// ASN is the autonomous system the address belongs to; ASOrg the
	// organisation that holds it.
	ASN   uint32 `json:"asn,omitempty"`
	ASOrg string `json:"as_org,omitempty"`
	// Network is the kind of network (one of the Network* constants).
	Network string `json:"network,omitempty"`
}

// ContextFromEvent returns the context of ev for a command's Reason.Context,
// and false when ev has no address (see ContextOf).
func ContextFromEvent(ev *AuditEvent) (EventContext, bool) {
	if ev.IP == "" || ev.ID == "" {
		return EventContext{}, false
	}
	addr, err := netip.ParseAddr(ev.IP)
	if err != nil {
		return EventContext{}, false
	}
	var g Geo
	if ev.Geo != nil {
		g = *ev.Geo
	}
	return ContextOf(ev.ID, addr, g), true
}

// ContextOf returns the context of the event eventID from addr, with the
// country, ASN, organisation and kind of network of g. What would not
// pass Validate (an organisation name with control or bidirectional
// characters, a malformed country, an unknown kind of network) is left
// out rather than failing the command; an organisation longer than
// MaxIDLen is cut at a character boundary. The address is unmapped and
// loses its zone.
func ContextOf(eventID string, addr netip.Addr, g Geo) EventContext {
	c := EventContext{EventID: eventID, IP: addr.Unmap().WithZone("").String(), ASN: g.ASN}
	if isCountryCode(g.Country) {
		c.Country = g.Country
	}
	org := g.Org
	if len(org) > MaxIDLen {
		org = org[:MaxIDLen]
		for len(org) > 0 && !utf8.ValidString(org) {
			org = org[:len(org)-1]
		}
	}
	if !hasBadIDRune(org) {
		c.ASOrg = org
	}
	if slices.Contains(Networks, g.Network) {
		c.Network = g.Network
	}
	return c
}

// validateContext checks a reason's context entries: at most one per
// evidence event, each naming one of evidence, with an address netip
// parses (no zone), a country of two upper-case letters or none, and
// bounded, printable names.
func validateContext(errs *fieldErrors, ctx []EventContext, evidence []string) {
	if len(ctx) > MaxEvidence {
		errs.add("reason.context", "%d entries, limit %d", len(ctx), MaxEvidence)
		return
	}
	if len(ctx) == 0 {
		return
	}
	seen := make(map[string]bool, len(ctx))
	inEvidence := func(id string) bool { return slices.Contains(evidence, id) }
	if len(ctx)*len(evidence) > 256 {
		// A hundred entries against a hundred ids: a set, not ten
		// thousand comparisons.
		set := make(map[string]bool, len(evidence))
		for _, id := range evidence {
			set[id] = true
		}
		inEvidence = func(id string) bool { return set[id] }
	}
	for i, c := range ctx {
		// Field names are built for problems only: a valid entry costs
		// no formatting.
		field := func(name string) string { return fmt.Sprintf("reason.context[%d].%s", i, name) }
		switch {
		case idProblem(c.EventID, true) != "":
			errs.add(field("event_id"), "%s", idProblem(c.EventID, true))
		case !inEvidence(c.EventID):
			errs.add(field("event_id"), "is not one of reason.evidence")
		case seen[c.EventID]:
			errs.add(field("event_id"), "names an event another entry names")
		}
		seen[c.EventID] = true
		if c.IP == "" {
			errs.add(field("ip"), "required")
		} else if a, err := netip.ParseAddr(c.IP); err != nil || a.Zone() != "" {
			errs.add(field("ip"), "not an IP address without a zone")
		}
		if c.Country != "" && !isCountryCode(c.Country) {
			errs.add(field("country"), "must be an ISO 3166-1 alpha-2 code")
		}
		if p := idProblem(c.ASOrg, false); p != "" {
			errs.add(field("as_org"), "%s", p)
		}
		if c.Network != "" && !slices.Contains(Networks, c.Network) {
			errs.add(field("network"), "unknown kind of network %q", truncate(c.Network, 32))
		}
	}
}

// idProblem is what checkID would say of v, or "".
func idProblem(v string, required bool) string {
	switch {
	case v == "" && required:
		return "required"
	case len(v) > MaxIDLen:
		return fmt.Sprintf("longer than %d bytes", MaxIDLen)
	case hasBadIDRune(v):
		return "contains control, zero-width, bidirectional or invalid characters"
	}
	return ""
}

// EncodeEventContext is the audit trail's encoding of one context entry
// (an element of AuditRow.EvidenceContext): a JSON object with the keys
// event_id, ip, country, asn, as_org and network in that order, empty
// optional fields left out, strings escaped only where JSON requires it
// (quote, backslash, control characters) so the encoding of an entry
// never changes with a JSON library. Readers decode it with
// ParseEventContext, or in ClickHouse with
// visitParamExtractString(entry, 'ip') and the like.
func EncodeEventContext(c EventContext) string {
	b := make([]byte, 0, 64+len(c.EventID)+len(c.ASOrg))
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, c.EventID)
	b = append(b, `,"ip":`...)
	b = appendJSONString(b, c.IP)
	if c.Country != "" {
		b = append(b, `,"country":`...)
		b = appendJSONString(b, c.Country)
	}
	if c.ASN != 0 {
		b = append(b, `,"asn":`...)
		b = strconv.AppendUint(b, uint64(c.ASN), 10)
	}
	if c.ASOrg != "" {
		b = append(b, `,"as_org":`...)
		b = appendJSONString(b, c.ASOrg)
	}
	if c.Network != "" {
		b = append(b, `,"network":`...)
		b = appendJSONString(b, c.Network)
	}
	return string(append(b, '}'))
}

// EncodeEventContexts encodes each entry (EncodeEventContext); nil for
// none.
func EncodeEventContexts(ctx []EventContext) []string {
	if len(ctx) == 0 {
		return nil
	}
	out := make([]string, len(ctx))
	for i, c := range ctx {
		out[i] = EncodeEventContext(c)
	}
	return out
}

// ParseEventContext decodes an entry of AuditRow.EvidenceContext. Keys it
// does not know are ignored, so entries written by later versions, which
// may say more, still read.
func ParseEventContext(s string) (EventContext, error) {
	var c EventContext
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return EventContext{}, fmt.Errorf("evidence context entry: %w", err)
	}
	return c, nil
}

// appendJSONString appends s as a JSON string, escaping the quote, the
// backslash and control characters (as \u00XX, or \n, \r, \t) and
// nothing else.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
