package engine

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Context is what the engine knows about an event beyond the event itself,
// worked out before the rules see it and offered to their conditions as
// the CEL variable ctx:
//
//	ctx.learned                 the user's history is at least
//	                            ContextConfig.Learning old
//	ctx.known_user              something of the user's (a device, a
//	                            network) is known from an event before
//	                            this one
//	ctx.watched                 the context has watched the organisation
//	                            for ContextConfig.Warmup: a user it has
//	                            never seen is new to it, not merely
//	                            unknown (a deployment's first hours)
//	ctx.new_device              the event's device (device_id and user
//	                            agent) is new to the user (judged against
//	                            what is known of a user with any history;
//	                            a user never seen has everything new)
//	ctx.new_network             its network (ASN) is new to the user
//	ctx.new_country             its country is new to the user
//	ctx.shared_egress           its address is one that many users of the
//	                            organisation sign in from (a NAT, a proxy)
//	ctx.org_network             its ASN is one that many users of the
//	                            organisation use (the office ISP, the VPN)
//	ctx.failures_recovered      at least half of the distinct users who
//	                            failed to sign in from the event's address
//	                            within ContextConfig.RetryWindow then
//	                            signed in from it: people mistyping behind
//	                            one address (or an identity provider
//	                            failing everyone for a while), not a list
//	                            of credentials being tried, whose users
//	                            never get in from the attacker's address
//	ctx.token_bound             the event's token is bound: an earlier event
//	                            of it gave the device and network it was
//	                            issued on
//	ctx.token_device_changed    the token is used from another device than
//	                            the one it was bound to
//	ctx.token_network_changed   ... from another network (ASN)
//	ctx.token_country_changed   ... from another country
//	ctx.token_interleaved       the token's first device and another one
//	                            both used it within ContextConfig.Interleave:
//	                            two holders at once, not a hand-over
//	ctx.token_network           the kind of network the token was bound on
//	                            (geo.network of its first event)
//	ctx.device_days             days since the user's device was first
//	                            seen (-1: never seen)
//
// A device is the pair (device_id, user_agent): either differing is another
// device. A network change on the same device (Wi-Fi to the carrier and
// back, a VPN switching points of presence) is not a device change.
//
// The user baseline learns from the events of a user that are not failures
// (a failed login proves nothing about who the user is) while the user's
// risk is below the first threshold of the risk rule (an intruder under
// suspicion does not teach the baseline his device). The organisation
// baseline counts distinct users per address and per ASN over successful
// logins. Both outlive any replay: BaselineChanges reports them for a store
// and RestoreBaselines loads them back. Token bindings last ContextConfig.
// TokenTTL after a token's last use and are rebuilt by replay.
type Context struct {
	Learned             bool
	KnownUser           bool
	Watched             bool
	NewDevice           bool
	NewNetwork          bool
	NewCountry          bool
	SharedEgress        bool
	OrgNetwork          bool
	FailuresRecovered   bool
	TokenBound          bool
	TokenDeviceChanged  bool
	TokenNetworkChanged bool
	TokenCountryChanged bool
	TokenInterleaved    bool
	TokenNetwork        string
	// DeviceDays is how many days ago the user's device was first seen;
	// -1 for a device never seen (or no device).
	DeviceDays int
}

// ContextConfig configures the context the engine keeps.
type ContextConfig struct {
	// Learning is how much of a user's history must be seen before
	// anything about the user counts as new.
	Learning time.Duration `yaml:"learning"`
	// Warmup is how long the context must have watched the organisation's
	// events (restored baselines included) before a user it has never
	// seen counts as new rather than unknown: in a deployment's first
	// hours, with no baselines, every user is.
	Warmup time.Duration `yaml:"warmup"`
	// Retention forgets a device, network or country a user has not shown
	// for this long.
	Retention time.Duration `yaml:"retention"`
	// MaxDevices, MaxNetworks and MaxCountries bound what is kept per user:
	// the most recently seen.
	MaxDevices   int `yaml:"max_devices"`
	MaxNetworks  int `yaml:"max_networks"`
	MaxCountries int `yaml:"max_countries"`
	// SharedEgressUsers is how many distinct users must have signed in
	// from one address for it to count as a shared egress;
	// OrgNetworkUsers the same for an ASN.
	SharedEgressUsers int `yaml:"shared_egress_users"`
	OrgNetworkUsers   int `yaml:"org_network_users"`
	// FamiliarAfter is how long after its first sighting a device, network
	// or country stops being new: what an intruder brings with the first
	// event of an intrusion (a password reset from his laptop) is learned
	// at once, but stays new while the intrusion unfolds.
	FamiliarAfter time.Duration `yaml:"familiar_after"`
	// RetryWindow is how far back a failed sign-in from an address counts
	// for ctx.failures_recovered.
	RetryWindow time.Duration `yaml:"retry_window"`
	// TokenTTL is how long a token's binding is kept after its last use.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// Interleave is how close in time the uses of two devices must be to
	// count as interleaved.
	Interleave time.Duration `yaml:"interleave"`
}

// DefaultContextConfig: a week of learning, a day of warm-up, 90 days of retention, 8
// devices, 16 networks and 8 countries per user; an address shared by 20
// users, an ASN by 50; failed sign-ins remembered for 10 minutes; token
// bindings for 12 hours, interleaving within 30 minutes.
func DefaultContextConfig() ContextConfig {
	return ContextConfig{
		Learning:          7 * 24 * time.Hour,
		Warmup:            24 * time.Hour,
		Retention:         90 * 24 * time.Hour,
		MaxDevices:        8,
		MaxNetworks:       16,
		MaxCountries:      8,
		FamiliarAfter:     2 * time.Hour,
		SharedEgressUsers: 20,
		OrgNetworkUsers:   50,
		RetryWindow:       10 * time.Minute,
		TokenTTL:          12 * time.Hour,
		Interleave:        30 * time.Minute,
	}
}

func (c ContextConfig) validate() []error {
	var errs []error
	if c.Learning < 0 || c.Learning > maxRetention {
		errs = append(errs, fmt.Errorf("engine: context.learning must be between 0 and %s", maxRetention))
	}
	if c.Warmup < 0 || c.Warmup > maxRetention {
		errs = append(errs, fmt.Errorf("engine: context.warmup must be between 0 and %s", maxRetention))
	}
	if c.Retention <= 0 || c.Retention > maxRetention {
		errs = append(errs, fmt.Errorf("engine: context.retention must be between 0 and %s", maxRetention))
	}
	for name, n := range map[string]int{"max_devices": c.MaxDevices, "max_networks": c.MaxNetworks, "max_countries": c.MaxCountries} {
		if n < 1 || n > 64 {
			errs = append(errs, fmt.Errorf("engine: context.%s must be between 1 and 64", name))
		}
	}
	if c.SharedEgressUsers < 2 || c.SharedEgressUsers > 255 || c.OrgNetworkUsers < 2 || c.OrgNetworkUsers > 255 {
		errs = append(errs, fmt.Errorf("engine: context.shared_egress_users and org_network_users must be between 2 and 255"))
	}
	if c.FamiliarAfter < 0 || c.FamiliarAfter > MaxWindow {
		errs = append(errs, fmt.Errorf("engine: context.familiar_after must be between 0 and %s", MaxWindow))
	}
	if c.TokenTTL <= 0 || c.TokenTTL > MaxWindow {
		errs = append(errs, fmt.Errorf("engine: context.token_ttl must be between 0 and %s", MaxWindow))
	}
	if c.RetryWindow <= 0 || c.RetryWindow > MaxWindow {
		errs = append(errs, fmt.Errorf("engine: context.retry_window must be between 0 and %s", MaxWindow))
	}
	if c.Interleave <= 0 || c.Interleave > c.TokenTTL {
		errs = append(errs, fmt.Errorf("engine: context.interleave must be positive and at most token_ttl"))
	}
	return errs
}

// day is a day number since the Unix epoch; baselines keep days, not
// instants, to stay small.
type day = uint16

func dayOf(t time.Time) day {
	d := t.Unix() / 86400
	if d < 0 {
		return 0
	}
	return day(min(d, 65535))
}

// seen is one learned value: a hash (a device) or the value itself (an
// ASN, a country packed into its two bytes), the minute it was first seen
// (since the Unix epoch) and the day it was last seen.
type seen struct {
	v     uint32
	first uint32
	last  day
	kind  uint8 // kindDevice, kindNetwork or kindCountry
}

// Kinds of learned value.
const (
	kindDevice uint8 = iota
	kindNetwork
	kindCountry
)

var kindField = [...]string{kindDevice: "device", kindNetwork: "asn", kindCountry: "country"}

func minuteOf(t time.Time) uint32 {
	m := t.Unix() / 60
	if m < 0 {
		return 0
	}
	return uint32(min(m, 1<<32-1))
}

// userBase is what the context learned of one user: 32 bytes and a map
// entry, plus 12 bytes per value kept (devices, networks and countries in
// one slice).
type userBase struct {
	since day
	// first is when the first event of the user's was learned (Unix
	// nanoseconds; from a restored baseline, its first sighting).
	first int64
	vals  []seen
}

// orgSketch counts the distinct users of an address or an ASN: a 64-bit
// linear-counting sketch (a bit per user hash), enough to tell one, a few
// and twenty apart within a few percent, in 8 bytes where a set of hashes
// took 40 or more per address (and almost every address has one user).
// sharedSketch marks one that reached its threshold.
type orgSketch = uint64

const sharedSketch orgSketch = ^orgSketch(0)

// sketchCount estimates the distinct users of a sketch.
func sketchCount(s orgSketch) float64 {
	zeros := 64 - bits.OnesCount64(s)
	if zeros == 0 {
		return math.Inf(1)
	}
	return -64 * math.Log(float64(zeros)/64)
}

// binding is what a token was issued on and how it has been used.
type binding struct {
	device  uint32 // hash of device_id and user agent of the first event
	asn     uint32
	country uint16
	network uint8 // index in networkKinds
	// other is the last device other than the bound one that used the
	// token, and when; firstAt is when the bound device last used it.
	other       uint32
	otherAt     int64
	firstAt     int64
	last        int64
	interleaved bool
}

var networkKinds = append([]string{""}, schemas.Networks...)

func networkIndex(n string) uint8 {
	for i, k := range networkKinds {
		if k == n {
			return uint8(i)
		}
	}
	return 0
}

// eventKeys are what the context looks an event up by.
type eventKeys struct {
	dev, asn uint32
	country  uint16
}

// contextTracker computes the Context of each event and learns from it.
type contextTracker struct {
	cfg    ContextConfig
	users  map[string]*userBase
	egress map[string]orgSketch // by address
	asns   map[uint32]orgSketch
	// sharedEgress and sharedASNs count the addresses and networks of
	// egress and asns that are shared (sharedSketch).
	sharedEgress, sharedASNs int
	tokens                   map[string]*binding
	// failed holds, by address, the users who lately failed to sign in
	// from it.
	failed map[string]*failedLogins
	// cur holds the current event's device hash, ASN and country, worked
	// out once by compute for learn.
	cur eventKeys
	// start is the earliest time watched: of an event, or the first
	// sighting in a restored baseline.
	start time.Time

	changes []BaselineEntry
}

func newContextTracker(cfg ContextConfig) *contextTracker {
	return &contextTracker{
		cfg:    cfg,
		users:  make(map[string]*userBase),
		egress: make(map[string]orgSketch),
		asns:   make(map[uint32]orgSketch),
		tokens: make(map[string]*binding),
		failed: make(map[string]*failedLogins),
	}
}

// fnv32 is FNV-1a over the strings, each followed by a zero byte.
func fnv32(parts ...string) uint32 {
	h := uint32(2166136261)
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			h ^= uint32(s[i])
			h *= 16777619
		}
		h ^= 0
		h *= 16777619
	}
	return h
}

func deviceHash(ev *schemas.AuditEvent) uint32 {
	if ev.DeviceID == "" && ev.UserAgent == "" {
		return 0
	}
	return fnv32(ev.DeviceID, ev.UserAgent)
}

func countryCode(ev *schemas.AuditEvent) uint16 {
	if ev.Geo == nil || len(ev.Geo.Country) != 2 {
		return 0
	}
	return uint16(ev.Geo.Country[0])<<8 | uint16(ev.Geo.Country[1])
}

func asnOf(ev *schemas.AuditEvent) uint32 {
	if ev.Geo == nil {
		return 0
	}
	return ev.Geo.ASN
}

func isFailure(t schemas.EventType) bool {
	return t == schemas.EventLoginFailure || t == schemas.EventMFAFailure
}

// find returns vals' entry for v of the kind, or nil.
func find(vals []seen, kind uint8, v uint32) *seen {
	for i := range vals {
		if vals[i].kind == kind && vals[i].v == v {
			return &vals[i]
		}
	}
	return nil
}

// familiar reports whether vals holds v of the kind, first seen before
// the minute before.
func familiar(vals []seen, kind uint8, v uint32, before uint32) bool {
	s := find(vals, kind, v)
	return s != nil && s.first <= before
}

// compute fills c for ev from what was learned before ev.
func (ct *contextTracker) compute(ev *schemas.AuditEvent, c *Context) {
	*c = Context{DeviceDays: -1}
	if ct.start.IsZero() || ev.Time.Before(ct.start) {
		ct.start = ev.Time
	}
	c.Watched = ev.Time.Sub(ct.start) >= ct.cfg.Warmup
	dev, asn, country := deviceHash(ev), asnOf(ev), countryCode(ev)
	ct.cur = eventKeys{dev: dev, asn: asn, country: country}
	if b := ct.users[ev.UserID]; b == nil {
		// A user never seen: whatever the event shows is new.
		c.NewDevice, c.NewNetwork, c.NewCountry = dev != 0, asn != 0, country != 0
	} else {
		// New is judged against what is known however little it is;
		// Learned says whether that is a week's worth.
		c.KnownUser = len(b.vals) > 0 && b.first < ev.Time.UnixNano()
		c.Learned = dayOf(ev.Time) >= b.since+day(ct.cfg.Learning/(24*time.Hour))
		before := minuteOf(ev.Time.Add(-ct.cfg.FamiliarAfter))
		if dev != 0 {
			s := find(b.vals, kindDevice, dev)
			c.NewDevice = s == nil || s.first > before
			if now := minuteOf(ev.Time); s != nil && s.first <= now {
				c.DeviceDays = int((now - s.first) / (24 * 60))
			}
		}
		c.NewNetwork = asn != 0 && !familiar(b.vals, kindNetwork, asn, before)
		c.NewCountry = country != 0 && !familiar(b.vals, kindCountry, uint32(country), before)
	}
	if ev.IP != "" {
		c.SharedEgress = ct.egress[ev.IP] == sharedSketch
		if ev.Type == schemas.EventLoginSuccess || ev.Type == schemas.EventLoginFailure {
			if f := ct.failed[ev.IP]; f != nil {
				c.FailuresRecovered = f.recovered(ev.Time.Add(-ct.cfg.RetryWindow).UnixNano())
			}
		}
	}
	if asn != 0 {
		c.OrgNetwork = ct.asns[asn] == sharedSketch
	}
	if ev.TokenID == "" {
		return
	}
	b := ct.tokens[ev.TokenID]
	if b == nil {
		return
	}
	c.TokenBound = true
	c.TokenNetwork = networkKinds[b.network]
	c.TokenDeviceChanged = dev != 0 && b.device != 0 && dev != b.device
	c.TokenNetworkChanged = asn != 0 && b.asn != 0 && asn != b.asn
	c.TokenCountryChanged = country != 0 && b.country != 0 && country != b.country
	t := ev.Time.UnixNano()
	within := func(a, b int64) bool {
		d := a - b
		if d < 0 {
			d = -d
		}
		return d <= int64(ct.cfg.Interleave)
	}
	switch {
	case b.interleaved:
		c.TokenInterleaved = c.TokenDeviceChanged || dev == b.device
	case c.TokenDeviceChanged:
		// Another device now, while the bound one used the token lately
		// (after another device last did). Only later uses count: an
		// event redelivered or arriving late says nothing of who holds
		// the token now.
		c.TokenInterleaved = b.firstAt != 0 && b.otherAt != 0 && t > b.firstAt && within(t, b.firstAt) && b.firstAt > b.otherAt
	case dev != 0 && dev == b.device:
		// The bound device again, after another one used the token lately.
		c.TokenInterleaved = b.otherAt != 0 && t > b.otherAt && within(t, b.otherAt)
	}
}

// learn updates the baselines and the token's binding with ev, the event
// compute was last called with. learnUser is false while the user is
// under suspicion.
func (ct *contextTracker) learn(ev *schemas.AuditEvent, c *Context, learnUser bool) {
	dev, asn, country := ct.cur.dev, ct.cur.asn, ct.cur.country
	if ev.TokenID != "" {
		t := ev.Time.UnixNano()
		b := ct.tokens[ev.TokenID]
		if b == nil {
			b = &binding{device: dev, asn: asn, country: country, firstAt: t}
			if ev.Geo != nil {
				b.network = networkIndex(ev.Geo.Network)
			}
			ct.tokens[ev.TokenID] = b
		} else {
			switch {
			case dev != 0 && dev == b.device:
				b.firstAt = max(b.firstAt, t)
			case dev != 0:
				b.other, b.otherAt = dev, max(b.otherAt, t)
			}
			if c.TokenInterleaved {
				b.interleaved = true
			}
		}
		b.last = max(b.last, t)
	}
	if ev.IP != "" {
		switch ev.Type {
		case schemas.EventLoginFailure:
			f := ct.failed[ev.IP]
			if f == nil {
				f = &failedLogins{}
				ct.failed[ev.IP] = f
			}
			f.fail(fnv32(ev.UserID), ev.Time.UnixNano())
		case schemas.EventLoginSuccess:
			if f := ct.failed[ev.IP]; f != nil {
				f.recover(fnv32(ev.UserID), ev.Time.UnixNano())
			}
		}
	}
	if isFailure(ev.Type) {
		return
	}
	if ev.Type == schemas.EventLoginSuccess {
		u := fnv32(ev.UserID)
		if ev.IP != "" {
			if old := ct.egress[ev.IP]; old != sharedSketch {
				sk, shared := addUser(old, u, ct.cfg.SharedEgressUsers)
				ct.egress[ev.IP] = sk
				if shared {
					ct.sharedEgress++
					ct.changes = append(ct.changes, BaselineEntry{Rule: contextRule, Key: "egress:" + ev.IP, Field: "shared", FirstSeen: ev.Time, LastSeen: ev.Time})
				}
			}
		}
		if asn != 0 {
			if old := ct.asns[asn]; old != sharedSketch {
				sk, shared := addUser(old, u, ct.cfg.OrgNetworkUsers)
				ct.asns[asn] = sk
				if shared {
					ct.sharedASNs++
					ct.changes = append(ct.changes, BaselineEntry{Rule: contextRule, Key: "asn:" + strconv.FormatUint(uint64(asn), 10), Field: "shared", FirstSeen: ev.Time, LastSeen: ev.Time})
				}
			}
		}
	}
	if !learnUser {
		return
	}
	b := ct.users[ev.UserID]
	d := dayOf(ev.Time)
	if b == nil {
		b = &userBase{since: d, first: ev.Time.UnixNano()}
		ct.users[ev.UserID] = b
		ct.changes = append(ct.changes, BaselineEntry{Rule: contextRule, Key: ev.UserID, FirstSeen: ev.Time, LastSeen: ev.Time})
	}
	if d < b.since {
		b.since = d
	}
	if dev != 0 {
		ct.note(b, kindDevice, dev, d, ct.cfg.MaxDevices, ev)
	}
	if asn != 0 {
		ct.note(b, kindNetwork, asn, d, ct.cfg.MaxNetworks, ev)
	}
	if country != 0 {
		ct.note(b, kindCountry, uint32(country), d, ct.cfg.MaxCountries, ev)
	}
}

// unlearn forgets the devices, networks and countries the user showed
// first at or after since: when a revocation answers an intrusion, what
// the intruder brought must stay new, or his next attempt would look
// familiar. Forgotten values are reported with a zero LastSeen.
func (ct *contextTracker) unlearn(user string, since time.Time) {
	b := ct.users[user]
	if b == nil {
		return
	}
	from := minuteOf(since)
	b.vals = slices.DeleteFunc(b.vals, func(s seen) bool {
		if s.first < from {
			return false
		}
		ct.changes = append(ct.changes, BaselineEntry{Rule: contextRule, Key: user, Field: kindField[s.kind],
			Value: strconv.FormatUint(uint64(s.v), 10), FirstSeen: time.Unix(int64(s.first)*60, 0).UTC()})
		return true
	})
}

// contextRule names the context's entries among the baselines.
const contextRule = "_context"

// note records v of the kind seen on day d in b, keeping at most limit
// values of the kind (the most recently seen). A new value, or a day moved
// on, is a change.
func (ct *contextTracker) note(b *userBase, kind uint8, v uint32, d day, limit int, ev *schemas.AuditEvent) {
	n, oldest := 0, -1
	for i := range b.vals {
		s := &b.vals[i]
		if s.kind != kind {
			continue
		}
		if s.v == v {
			if d > s.last {
				s.last = d
				ct.changes = append(ct.changes, BaselineEntry{Rule: contextRule, Key: ev.UserID, Field: kindField[kind], Value: strconv.FormatUint(uint64(v), 10),
					FirstSeen: time.Unix(int64(s.first)*60, 0).UTC(), LastSeen: ev.Time})
			}
			return
		}
		n++
		if oldest < 0 || s.last < b.vals[oldest].last {
			oldest = i
		}
	}
	if n >= limit {
		b.vals = slices.Delete(b.vals, oldest, oldest+1)
	}
	ct.changes = append(ct.changes, BaselineEntry{Rule: contextRule, Key: ev.UserID, Field: kindField[kind], Value: strconv.FormatUint(uint64(v), 10), FirstSeen: ev.Time, LastSeen: ev.Time})
	b.vals = append(b.vals, seen{v: v, first: minuteOf(ev.Time), last: d, kind: kind})
}

// addUser adds the user hash u to the sketch; it returns the new sketch,
// and whether it just became shared (its estimate reached limit).
func addUser(sk orgSketch, u uint32, limit int) (orgSketch, bool) {
	if sk == sharedSketch {
		return sk, false
	}
	// Mix the hash (murmur3's finalizer): FNV-1a of ids that differ in
	// their last characters differs in few bits.
	u ^= u >> 16
	u *= 0x85ebca6b
	u ^= u >> 13
	u *= 0xc2b2ae35
	u ^= u >> 16
	bit := orgSketch(1) << (u & 63)
	if sk&bit != 0 {
		return sk, false
	}
	sk |= bit
	if sketchCount(sk) >= float64(limit) {
		return sharedSketch, true
	}
	return sk, false
}

// sweep forgets token bindings idle beyond the TTL and addresses with no
// failed sign-in within the retry window. (Baseline values go in
// sweepBaselines; organisation sketches are kept: 8 bytes and a map entry
// per address or ASN ever seen signing in.)
func (ct *contextTracker) sweep(watermark time.Time) {
	before := watermark.Add(-ct.cfg.TokenTTL).UnixNano()
	for k, b := range ct.tokens {
		if b.last < before {
			delete(ct.tokens, k)
		}
	}
	before = watermark.Add(-ct.cfg.RetryWindow).UnixNano()
	for k, f := range ct.failed {
		if f.last() < before {
			delete(ct.failed, k)
		}
	}
}

// maxFailedUsers bounds the users an address's failedLogins keeps: the
// most recent. A judgement of half needs no more, and an address trying a
// list of thousands costs no more than this.
const maxFailedUsers = 32

// failedLogins are the users who lately failed to sign in from one
// address, each with the time of their last failure there and whether
// they signed in from it after it.
type failedLogins struct {
	users []failedLogin
}

type failedLogin struct {
	user      uint32
	at        int64 // unix nanoseconds of the last failure
	recovered bool
}

// fail records a failure of user at t; the oldest entry makes room. A
// failure no newer than the user's last one (redelivered, or arriving
// late) changes nothing.
func (f *failedLogins) fail(user uint32, t int64) {
	oldest := 0
	for i := range f.users {
		e := &f.users[i]
		if e.user == user {
			if t > e.at {
				e.at, e.recovered = t, false
			}
			return
		}
		if e.at < f.users[oldest].at {
			oldest = i
		}
	}
	if len(f.users) < maxFailedUsers {
		f.users = append(f.users, failedLogin{user: user, at: t})
		return
	}
	f.users[oldest] = failedLogin{user: user, at: t}
}

// recover records that user signed in at t: a failure before it is
// recovered.
func (f *failedLogins) recover(user uint32, t int64) {
	for i := range f.users {
		if e := &f.users[i]; e.user == user && e.at <= t {
			e.recovered = true
		}
	}
}

// recovered reports whether at least half the users who failed since
// since have signed in after it.
func (f *failedLogins) recovered(since int64) bool {
	failed, back := 0, 0
	for _, e := range f.users {
		if e.at < since {
			continue
		}
		failed++
		if e.recovered {
			back++
		}
	}
	return failed > 0 && 2*back >= failed
}

// last is the time of the most recent failure.
func (f *failedLogins) last() int64 {
	var t int64
	for _, e := range f.users {
		t = max(t, e.at)
	}
	return t
}

// sweepBaselines drops values unseen for the retention; it runs rarely.
func (ct *contextTracker) sweepBaselines(watermark time.Time) {
	cut := dayOf(watermark.Add(-ct.cfg.Retention))
	for _, b := range ct.users {
		b.vals = slices.DeleteFunc(b.vals, func(s seen) bool { return s.last < cut })
	}
}

// drain returns the baseline changes since the last call.
func (ct *contextTracker) drain(out []BaselineEntry) []BaselineEntry {
	out = append(out, ct.changes...)
	ct.changes = ct.changes[:0]
	return out
}

// restore loads one stored entry.
func (ct *contextTracker) restore(en BaselineEntry) {
	if en.LastSeen.IsZero() {
		return
	}
	if !en.FirstSeen.IsZero() && (ct.start.IsZero() || en.FirstSeen.Before(ct.start)) {
		ct.start = en.FirstSeen
	}
	if kind, key, ok := strings.Cut(en.Key, ":"); ok && en.Field == "shared" {
		switch kind {
		case "egress":
			if ct.egress[key] != sharedSketch {
				ct.egress[key] = sharedSketch
				ct.sharedEgress++
			}
		case "asn":
			if n, err := strconv.ParseUint(key, 10, 32); err == nil && ct.asns[uint32(n)] != sharedSketch {
				ct.asns[uint32(n)] = sharedSketch
				ct.sharedASNs++
			}
		}
		return
	}
	b := ct.users[en.Key]
	if b == nil {
		b = &userBase{since: dayOf(en.FirstSeen), first: en.FirstSeen.UnixNano()}
		ct.users[en.Key] = b
	}
	if f := en.FirstSeen.UnixNano(); f < b.first {
		b.first = f
	}
	if d := dayOf(en.FirstSeen); en.Field == "" && d < b.since {
		b.since = d
	}
	parsed, err := strconv.ParseUint(en.Value, 10, 32)
	if err != nil || en.Field == "" {
		return
	}
	v, d := uint32(parsed), dayOf(en.LastSeen)
	kind, limit := kindDevice, ct.cfg.MaxDevices
	switch en.Field {
	case "device":
	case "asn":
		kind, limit = kindNetwork, ct.cfg.MaxNetworks
	case "country":
		kind, limit = kindCountry, ct.cfg.MaxCountries
	default:
		return
	}
	n := 0
	for i := range b.vals {
		if b.vals[i].kind == kind {
			if b.vals[i].v == v {
				b.vals[i].last = max(b.vals[i].last, d)
				return
			}
			n++
		}
	}
	if n < limit {
		b.vals = append(b.vals, seen{v: v, first: minuteOf(en.FirstSeen), last: d, kind: kind})
	}
}
