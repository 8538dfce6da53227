package schemas

import (
	"strconv"
	"unicode/utf8"
)

// decodeEventFast decodes the shape events almost always have, without
// reflection: an object of the event's own keys, each once, whose strings
// hold no escapes and whose numbers are plain. It reports false as soon as
// it meets anything else (an unknown or repeated key, null, an escape, a
// value of the wrong kind, bytes after the object), and then ev must be
// discarded: DecodeEvent decodes the input again with decodeStrict, whose
// answer stands, so that everything unusual or invalid is judged, and
// explained, in one place. When it reports true, ev is exactly what
// decodeStrict makes of the input (TestDecodeEventFastAgrees,
// FuzzDecodeEventFast).
//
// It exists because decoding was the largest cost of the detector's
// handler that is not the rule engine: BenchmarkDecodeSimulated measured
// 3.8 µs and 13 allocations per simulated event with decodeStrict alone.
func decodeEventFast(data []byte, ev *AuditEvent) bool {
	p := fastParser{b: data}
	if !p.object(func(key []byte) (uint32, bool) { return p.eventField(key, ev) }) {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

// eventField decodes the value of the event's field key into ev and
// returns the field's bit, for finding a key given twice.
func (p *fastParser) eventField(key []byte, ev *AuditEvent) (uint32, bool) {
	var ok bool
	switch string(key) {
	case "id":
		ev.ID, ok = p.str()
		return 1 << 0, ok
	case "time":
		raw, ok := p.rawStr()
		if !ok {
			return 0, false
		}
		// As decodeStrict reads timestamps: time.Time.UnmarshalJSON on
		// the raw string.
		return 1 << 1, ev.Time.UnmarshalJSON(raw) == nil
	case "type":
		var s string
		s, ok = p.shared()
		ev.Type = EventType(s)
		return 1 << 2, ok
	case "user_id":
		ev.UserID, ok = p.shared()
		return 1 << 3, ok
	case "session_id":
		ev.SessionID, ok = p.shared()
		return 1 << 4, ok
	case "token_id":
		ev.TokenID, ok = p.shared()
		return 1 << 5, ok
	case "parent_token_id":
		ev.ParentTokenID, ok = p.shared()
		return 1 << 6, ok
	case "client_id":
		ev.ClientID, ok = p.shared()
		return 1 << 7, ok
	case "scopes":
		ev.Scopes, ok = p.strings()
		return 1 << 8, ok
	case "ip":
		ev.IP, ok = p.shared()
		return 1 << 9, ok
	case "user_agent":
		ev.UserAgent, ok = p.shared()
		return 1 << 10, ok
	case "device_id":
		ev.DeviceID, ok = p.shared()
		return 1 << 11, ok
	case "geo":
		ev.Geo = new(Geo)
		return 1 << 12, p.geo(ev.Geo)
	case "resource":
		ev.Resource = new(Resource)
		return 1 << 13, p.resource(ev.Resource)
	case "bytes":
		ev.Bytes, ok = p.int64()
		return 1 << 14, ok
	case "source":
		ev.Source, ok = p.shared()
		return 1 << 15, ok
	case "attrs":
		ev.Attrs, ok = p.stringMap()
		return 1 << 16, ok
	}
	return 0, false
}

func (p *fastParser) geo(g *Geo) bool {
	return p.object(func(key []byte) (uint32, bool) {
		var ok bool
		switch string(key) {
		case "country":
			g.Country, ok = p.shared()
			return 1 << 0, ok
		case "city":
			g.City, ok = p.shared()
			return 1 << 1, ok
		case "lat":
			g.Lat, ok = p.float64Ptr()
			return 1 << 2, ok
		case "lon":
			g.Lon, ok = p.float64Ptr()
			return 1 << 3, ok
		case "asn":
			g.ASN, ok = p.uint32()
			return 1 << 4, ok
		case "org":
			g.Org, ok = p.shared()
			return 1 << 5, ok
		case "network":
			g.Network, ok = p.shared()
			return 1 << 6, ok
		}
		return 0, false
	})
}

func (p *fastParser) resource(r *Resource) bool {
	return p.object(func(key []byte) (uint32, bool) {
		var ok bool
		switch string(key) {
		case "type":
			r.Type, ok = p.shared()
			return 1 << 0, ok
		case "id":
			r.ID, ok = p.shared()
			return 1 << 1, ok
		}
		return 0, false
	})
}

// fastParser reads JSON from b at i, accepting only what decodeEventFast
// handles.
type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (p *fastParser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastParser) objectStart() bool { return p.consume('{') }

// object reads an object whose keys field knows: field decodes the key's
// value and returns the key's bit (a key given twice is refused), or
// false for a key it does not know or a value it does not take.
func (p *fastParser) object(field func(key []byte) (bit uint32, ok bool)) bool {
	if !p.objectStart() {
		return false
	}
	var seen uint32
	for first := true; ; first = false {
		key, ok := p.nextKey(first)
		if !ok {
			return false
		}
		if key == nil {
			return true
		}
		bit, ok := field(key)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// nextKey reads the next key of an object and the colon after it; first
// says whether it would be the object's first. It returns nil, true at
// the end of the object.
func (p *fastParser) nextKey(first bool) ([]byte, bool) {
	if p.consume('}') {
		return nil, true
	}
	if !first && !p.consume(',') {
		return nil, false
	}
	p.ws()
	key, ok := p.rawStr()
	if !ok || !p.consume(':') {
		return nil, false
	}
	p.ws()
	return key[1 : len(key)-1], true
}

// rawStr reads a string with its quotes: one with no escapes, no control
// characters and valid UTF-8.
func (p *fastParser) rawStr() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i
	ascii := true
	for j := start + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			raw := p.b[start:p.i]
			if !ascii && !utf8.Valid(raw) {
				return nil, false
			}
			return raw, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (p *fastParser) str() (string, bool) {
	raw, ok := p.rawStr()
	if !ok {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// shared reads a string like str, but one that events repeat, through the
// decoder's interner: the same value in many events is one string.
func (p *fastParser) shared() (string, bool) {
	raw, ok := p.rawStr()
	if !ok {
		return "", false
	}
	return decodeStrings.str(raw[1 : len(raw)-1]), true
}

// strings reads an array of strings; [] is an empty slice, not nil.
func (p *fastParser) strings() ([]string, bool) {
	if !p.consume('[') {
		return nil, false
	}
	out := []string{}
	if p.consume(']') {
		return out, true
	}
	for {
		p.ws()
		s, ok := p.shared()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		if p.consume(']') {
			return out, true
		}
		if !p.consume(',') {
			return nil, false
		}
	}
}

// stringMap reads an object of strings; {} is an empty map, not nil.
func (p *fastParser) stringMap() (map[string]string, bool) {
	if !p.objectStart() {
		return nil, false
	}
	out := map[string]string{}
	for first := true; ; first = false {
		key, ok := p.nextKey(first)
		if !ok {
			return nil, false
		}
		if key == nil {
			return out, true
		}
		if _, dup := out[string(key)]; dup {
			return nil, false
		}
		v, ok := p.shared()
		if !ok {
			return nil, false
		}
		out[decodeStrings.str(key)] = v
	}
}

// digits reads an integer as JSON writes one (no leading zeros), with a
// leading minus when signed; it returns its bytes.
func (p *fastParser) digits(signed bool) ([]byte, bool) {
	start := p.i
	if signed && p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	d := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - d
	if n == 0 || (p.b[d] == '0' && (n > 1 || p.b[start] == '-')) {
		return nil, false // no digits, a leading zero, or -0
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return nil, false // not an integer as written
		}
	}
	return p.b[start:p.i], true
}

func (p *fastParser) int64() (int64, bool) {
	b, ok := p.digits(true)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}

func (p *fastParser) uint32() (uint32, bool) {
	b, ok := p.digits(false)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(v), err == nil
}

// float64Ptr reads a number as JSON's grammar has it.
func (p *fastParser) float64Ptr() (*float64, bool) {
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i >= len(p.b):
		return nil, false
	case p.b[p.i] == '0':
		p.i++
		if p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			return nil, false // a leading zero
		}
	case !p.run():
		return nil, false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.run() {
			return nil, false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.run() {
			return nil, false
		}
	}
	v, err := strconv.ParseFloat(string(p.b[start:p.i]), 64)
	if err != nil {
		return nil, false
	}
	return &v, true
}

// run reads one or more digits.
func (p *fastParser) run() bool {
	d := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > d
}
