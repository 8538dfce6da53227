package engine

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/revoked-dev/revoked/schemas"
)

// ipPrefix reads the network of the event's address: its /24 for IPv4,
// its /48 for IPv6. Addresses of one network change often (DHCP, carrier
// NAT, IPv6 privacy addresses); networks change less.
func ipPrefix(e *schemas.AuditEvent) string {
	if e.IP == "" {
		return ""
	}
	a, err := netip.ParseAddr(e.IP)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// accessor reads one field of an event as a string; "" means absent.
type accessor func(*schemas.AuditEvent) string

// FieldNames returns the names of the event fields rules can match, group
// and count on, besides "attrs.<key>" for any attribute key.
func FieldNames() []string {
	return []string{
		"id", "type", "user_id", "session_id", "token_id", "parent_token_id",
		"client_id", "ip", "user_agent", "device_id", "source",
		"geo.country", "geo.city", "geo.asn", "geo.org", "geo.network", "resource.type", "resource.id",
		"ip.prefix",
	}
}

// lookupField returns the accessor of a field name.
func lookupField(name string) (accessor, bool) {
	switch name {
	case "id":
		return func(e *schemas.AuditEvent) string { return e.ID }, true
	case "type":
		return func(e *schemas.AuditEvent) string { return string(e.Type) }, true
	case "user_id":
		return func(e *schemas.AuditEvent) string { return e.UserID }, true
	case "session_id":
		return func(e *schemas.AuditEvent) string { return e.SessionID }, true
	case "token_id":
		return func(e *schemas.AuditEvent) string { return e.TokenID }, true
	case "parent_token_id":
		return func(e *schemas.AuditEvent) string { return e.ParentTokenID }, true
	case "client_id":
		return func(e *schemas.AuditEvent) string { return e.ClientID }, true
	case "ip":
		return func(e *schemas.AuditEvent) string { return e.IP }, true
	case "user_agent":
		return func(e *schemas.AuditEvent) string { return e.UserAgent }, true
	case "device_id":
		return func(e *schemas.AuditEvent) string { return e.DeviceID }, true
	case "source":
		return func(e *schemas.AuditEvent) string { return e.Source }, true
	case "geo.country":
		return func(e *schemas.AuditEvent) string {
			if e.Geo == nil {
				return ""
			}
			return e.Geo.Country
		}, true
	case "geo.city":
		return func(e *schemas.AuditEvent) string {
			if e.Geo == nil {
				return ""
			}
			return e.Geo.City
		}, true
	case "geo.asn":
		return func(e *schemas.AuditEvent) string {
			if e.Geo == nil || e.Geo.ASN == 0 {
				return ""
			}
			return strconv.FormatUint(uint64(e.Geo.ASN), 10)
		}, true
	case "geo.org":
		return func(e *schemas.AuditEvent) string {
			if e.Geo == nil {
				return ""
			}
			return e.Geo.Org
		}, true
	case "geo.network":
		return func(e *schemas.AuditEvent) string {
			if e.Geo == nil {
				return ""
			}
			return e.Geo.Network
		}, true
	case "resource.type":
		return func(e *schemas.AuditEvent) string {
			if e.Resource == nil {
				return ""
			}
			return e.Resource.Type
		}, true
	case "resource.id":
		return func(e *schemas.AuditEvent) string {
			if e.Resource == nil {
				return ""
			}
			return e.Resource.ID
		}, true
	case "ip.prefix":
		return ipPrefix, true
	}
	if key, ok := strings.CutPrefix(name, "attrs."); ok && key != "" {
		return func(e *schemas.AuditEvent) string { return e.Attrs[key] }, true
	}
	return nil, false
}

// Condition is one test on an event field of the older rule format: the
// field equals a value, or is one of a list of values (an absent field
// reading as ""). Rules with them are refused with the CEL they stand for.
type Condition struct {
	Field  string   `yaml:"field"`
	Equals *string  `yaml:"equals,omitempty"`
	In     []string `yaml:"in,omitempty"`
}
