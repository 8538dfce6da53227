package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/revoked-dev/revoked/internal/config"
)

// clientsFile is the on-disk form of the registered clients. A client's
// secret comes from exactly one of secret, secret_env (the name of an
// environment variable) or secret_file (a path, relative to the clients
// file), so that the file itself need not hold secrets.
type clientsFile struct {
	Clients []struct {
		ID            string   `yaml:"id"`
		Secret        string   `yaml:"secret"`
		SecretEnv     string   `yaml:"secret_env"`
		SecretFile    string   `yaml:"secret_file"`
		Grants        []string `yaml:"grants"`
		Scopes        []string `yaml:"scopes"`
		RevokeAny     bool     `yaml:"revoke_any"`
		IntrospectAny bool     `yaml:"introspect_any"`
	} `yaml:"clients"`
}

// LoadClients reads registered clients from a YAML or JSON file:
//
//	clients:
//	  - id: revoker
//	    secret_env: TOKENAPI_REVOKER_SECRET
//	    grants: [client_credentials]
//	    revoke_any: true
//	    introspect_any: true
//	  - id: app
//	    secret_file: app.secret
//	    grants: [client_credentials, token-exchange]
//	    scopes: [files.read, files.write]
//
// Unknown fields are rejected. getenv resolves secret_env (os.Getenv in
// production). It reports every problem at once; the clients are not
// validated further here, Config.Validate does that.
func LoadClients(path string, getenv func(string) string) ([]ClientConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading clients file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f clientsFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parsing clients file %s: %w", path, err)
	}
	var errs []error
	out := make([]ClientConfig, 0, len(f.Clients))
	for i, c := range f.Clients {
		set := 0
		for _, v := range []string{c.Secret, c.SecretEnv, c.SecretFile} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			errs = append(errs, fmt.Errorf("clients[%d] (%s): exactly one of secret, secret_env, secret_file is required", i, c.ID))
			continue
		}
		secret := c.Secret
		switch {
		case c.SecretEnv != "":
			secret = getenv(c.SecretEnv)
			if secret == "" {
				errs = append(errs, fmt.Errorf("clients[%d] (%s): environment variable %s is empty", i, c.ID, c.SecretEnv))
			}
		case c.SecretFile != "":
			p := c.SecretFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("clients[%d] (%s): reading secret file: %w", i, c.ID, err))
			}
			secret = strings.TrimSpace(string(b))
		}
		out = append(out, ClientConfig{
			ID:            c.ID,
			Secret:        config.NewSecret(secret),
			Grants:        c.Grants,
			Scopes:        c.Scopes,
			RevokeAny:     c.RevokeAny,
			IntrospectAny: c.IntrospectAny,
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("clients file %s: %w", path, err)
	}
	return out, nil
}
