package app

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/reboundhq/rebound/internal/config"
)

// natsCredentials are the connect options for the NATS authentication and TLS settings
// that do not fit in REBOUND_NATS_URL (config.Validate has checked their combination).
func natsCredentials(cfg config.Config) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case cfg.NATSCredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.NATSCredsFile))
	case cfg.NATSNkeyFile != "":
		o, err := nats.NkeyOptionFromSeed(cfg.NATSNkeyFile)
		if err != nil {
			return nil, fmt.Errorf("REBOUND_NATS_NKEY_FILE: %w", err)
		}
		opts = append(opts, o)
	case cfg.NATSUser != "":
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	}
	// Both read their files again on every (re)connect, so a rotated certificate
	// mounted from a Secret is picked up without a restart.
	if cfg.NATSCAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.NATSCAFile))
	}
	if cfg.NATSCertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.NATSCertFile, cfg.NATSKeyFile))
	}
	return opts, nil
}

// redisCAPool reads REBOUND_REDIS_CA_FILE, the CA bundle a rediss:// connection trusts.
func redisCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("REBOUND_REDIS_CA_FILE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("REBOUND_REDIS_CA_FILE: no PEM certificate in the file")
	}
	return pool, nil
}
