package ssf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"
)

// maxDocumentBytes bounds a fetched JWKS or configuration document.
const maxDocumentBytes = 1 << 20

// StaticKeys is a key set given at start (a JWKS file).
type StaticKeys struct {
	Set jose.JSONWebKeySet
}

var _ KeySource = StaticKeys{}

// Keys implements KeySource.
func (s StaticKeys) Keys(_ context.Context, kid string) ([]jose.JSONWebKey, error) {
	return selectKeys(s.Set, kid), nil
}

func selectKeys(set jose.JSONWebKeySet, kid string) []jose.JSONWebKey {
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

// ParseJWKS decodes a JWK Set, keeping only public keys: a set that
// carries private key material is refused, since it was never meant to
// be published.
func ParseJWKS(data []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return set, fmt.Errorf("decoding JWKS: %w", err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return jose.JSONWebKeySet{}, errors.New("JWKS holds private key material")
		}
	}
	return set, nil
}

// RemoteKeys is the key set at a jwks_uri, fetched on first use and
// cached for TTL. A kid it does not hold makes it fetch again, at most
// once per MinRefresh, so a transmitter's new key is picked up without a
// restart and a flood of SETs with unknown key ids does not become a
// flood of fetches. When the fetch fails after TTL the keys last fetched
// stay in use (a JWKS endpoint that blinks does not stop verification)
// and the error is returned only when there are none.
type RemoteKeys struct {
	url        string
	client     *http.Client
	clock      clockwork.Clock
	ttl        time.Duration
	minRefresh time.Duration

	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetched time.Time // zero: never fetched
	tried   time.Time
}

var _ KeySource = (*RemoteKeys)(nil)

// Defaults of RemoteKeys.
const (
	DefaultKeysTTL        = time.Hour
	DefaultKeysMinRefresh = time.Minute
)

// NewRemoteKeys returns the key set at jwksURL, fetched with client on
// clock (nil: the real one).
func NewRemoteKeys(jwksURL string, client *http.Client, clock clockwork.Clock) *RemoteKeys {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &RemoteKeys{url: jwksURL, client: client, clock: clock, ttl: DefaultKeysTTL, minRefresh: DefaultKeysMinRefresh}
}

// URL is where the keys are fetched from.
func (r *RemoteKeys) URL() string { return r.url }

// Keys implements KeySource.
func (r *RemoteKeys) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	stale := r.fetched.IsZero() || now.Sub(r.fetched) >= r.ttl
	unknown := kid != "" && len(r.set.Key(kid)) == 0
	if stale || (unknown && now.Sub(r.tried) >= r.minRefresh) {
		r.tried = now
		set, err := fetchJWKS(ctx, r.client, r.url)
		switch {
		case err == nil:
			r.set, r.fetched = set, now
		case r.fetched.IsZero():
			return nil, err
		}
	}
	return selectKeys(r.set, kid), nil
}

func fetchJWKS(ctx context.Context, client *http.Client, u string) (jose.JSONWebKeySet, error) {
	body, err := getDocument(ctx, client, u)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return set, fmt.Errorf("JWKS at %s: %w", u, err)
	}
	return set, nil
}

// getDocument GETs a JSON document of at most maxDocumentBytes.
func getDocument(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{URL: u, Status: resp.StatusCode}
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("%s: document larger than %d bytes", u, maxDocumentBytes)
	}
	return body, nil
}

// HTTPError is a non-200 answer to a document fetch.
type HTTPError struct {
	URL    string
	Status int
}

func (e *HTTPError) Error() string { return fmt.Sprintf("%s answered HTTP %d", e.URL, e.Status) }

// AuthorizationScheme is one entry of a transmitter's
// authorization_schemes (SSF 1.0 section 7.1.1).
type AuthorizationScheme struct {
	SpecURN string `json:"spec_urn"`
}

// SpecVersion is the spec_version of SSF 1.0 final.
const SpecVersion = "1_0"

// TransmitterMetadata is the Transmitter Configuration Metadata of SSF
// 1.0 section 7.1, served at /.well-known/ssf-configuration.
type TransmitterMetadata struct {
	SpecVersion              string                `json:"spec_version,omitempty"`
	Issuer                   string                `json:"issuer"`
	JWKSURI                  string                `json:"jwks_uri,omitempty"`
	DeliveryMethodsSupported []string              `json:"delivery_methods_supported,omitempty"`
	ConfigurationEndpoint    string                `json:"configuration_endpoint,omitempty"`
	StatusEndpoint           string                `json:"status_endpoint,omitempty"`
	AddSubjectEndpoint       string                `json:"add_subject_endpoint,omitempty"`
	RemoveSubjectEndpoint    string                `json:"remove_subject_endpoint,omitempty"`
	VerificationEndpoint     string                `json:"verification_endpoint,omitempty"`
	CriticalSubjectMembers   []string              `json:"critical_subject_members,omitempty"`
	AuthorizationSchemes     []AuthorizationScheme `json:"authorization_schemes,omitempty"`
	DefaultSubjects          string                `json:"default_subjects,omitempty"`
}

// Well-known paths of transmitter configuration (SSF 1.0 section 7.2;
// section 7.2.2 lets RISC transmitters keep the older one).
const (
	WellKnownSSF  = "/.well-known/ssf-configuration"
	WellKnownRISC = "/.well-known/risc-configuration"
)

// WellKnownURL is where the configuration of issuer is published: the
// well-known path inserted between the host and the issuer's path, its
// trailing slash removed (SSF 1.0 section 7.2).
func WellKnownURL(issuer, wellKnown string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("issuer %q is not an absolute http(s) URL", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("issuer %q has a query or fragment", issuer)
	}
	u.Path = wellKnown + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// Discover fetches the transmitter configuration of issuer, from the
// SSF well-known path or else the RISC one, and checks that it names the
// same issuer (SSF 1.0 section 7.2.4): a configuration naming another
// issuer must not be used.
func Discover(ctx context.Context, client *http.Client, issuer string) (TransmitterMetadata, error) {
	var md TransmitterMetadata
	var errs []error
	for _, wk := range []string{WellKnownSSF, WellKnownRISC} {
		u, err := WellKnownURL(issuer, wk)
		if err != nil {
			return md, err
		}
		body, err := getDocument(ctx, client, u)
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			return md, err
		}
		if err := json.Unmarshal(body, &md); err != nil {
			return md, fmt.Errorf("decoding %s: %w", u, err)
		}
		if md.Issuer != issuer {
			return TransmitterMetadata{}, fmt.Errorf("%s names issuer %q, not %q", u, md.Issuer, issuer)
		}
		return md, nil
	}
	return md, fmt.Errorf("no transmitter configuration for %s: %w", issuer, errors.Join(errs...))
}

// DiscoveredKeys is the key set of the transmitter at issuer: its
// configuration is discovered on first use (Discover) and its jwks_uri
// then read through RemoteKeys. A failed discovery is tried again on the
// next call.
type DiscoveredKeys struct {
	issuer string
	client *http.Client
	clock  clockwork.Clock

	mu   sync.Mutex
	keys *RemoteKeys
}

var _ KeySource = (*DiscoveredKeys)(nil)

// NewDiscoveredKeys returns the keys of the transmitter at issuer.
func NewDiscoveredKeys(issuer string, client *http.Client, clock clockwork.Clock) *DiscoveredKeys {
	return &DiscoveredKeys{issuer: issuer, client: client, clock: clock}
}

// Keys implements KeySource.
func (d *DiscoveredKeys) Keys(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	d.mu.Lock()
	keys := d.keys
	if keys == nil {
		md, err := Discover(ctx, d.client, d.issuer)
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		if md.JWKSURI == "" {
			d.mu.Unlock()
			return nil, fmt.Errorf("the configuration of %s names no jwks_uri", d.issuer)
		}
		keys = NewRemoteKeys(md.JWKSURI, d.client, d.clock)
		d.keys = keys
	}
	d.mu.Unlock()
	return keys.Keys(ctx, kid)
}
