package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// Defaults of Config.
const (
	DefaultIssuer            = "revoked-detector"
	DefaultCommandTTL        = time.Hour
	DefaultAllowance         = 2 * time.Minute
	DefaultMaxEventsPerGroup = 1024

	// MaxAllowance bounds the out-of-order allowance: the allowance is held
	// in memory for every group of every rule.
	MaxAllowance = time.Hour
)

// Config configures an Engine.
type Config struct {
	// Issuer is the issuer of the commands the engine builds.
	Issuer string `flag:"issuer" env:"ISSUER" yaml:"issuer" usage:"issuer named in the commands"`
	// CommandTTL is how long a command stays valid after its IssuedAt.
	CommandTTL time.Duration `flag:"command-ttl" env:"COMMAND_TTL" yaml:"command_ttl" usage:"how long a command stays valid after it is issued"`
	// DryRun makes every command a dry_run command, whatever the rules say.
	DryRun bool `flag:"dry-run" env:"DRY_RUN" yaml:"dry_run" usage:"make every command a dry_run command, whatever the rules say"`
	// Allowance is how far, in event time, an event may arrive behind the
	// newest event of its group and still count. Later events are dropped
	// and counted in Stats.Late.
	Allowance time.Duration `flag:"allowance" env:"ALLOWANCE" yaml:"allowance" usage:"how far behind its group's newest event an event may arrive and still count"`
	// MaxEventsPerGroup bounds the records one group of one rule holds;
	// beyond it the oldest are dropped (Stats.Truncated). It caps what a
	// flood of events for one user or token can make the engine hold.
	MaxEventsPerGroup int `flag:"max-events-per-group" env:"MAX_EVENTS_PER_GROUP" yaml:"max_events_per_group" usage:"most event records one group of one rule holds"`
	// Context configures the baselines and token bindings behind the
	// rules' ctx variable.
	Context ContextConfig `flag:"-" env:"-" yaml:"context"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Issuer:            DefaultIssuer,
		CommandTTL:        DefaultCommandTTL,
		Allowance:         DefaultAllowance,
		MaxEventsPerGroup: DefaultMaxEventsPerGroup,
		Context:           DefaultContextConfig(),
	}
}

// Errors of Config.Validate.
var (
	ErrNoIssuer      = errors.New("engine: issuer is required")
	ErrBadCommandTTL = fmt.Errorf("engine: command_ttl must be positive and at most %s", schemas.MaxCommandTTL)
	ErrBadAllowance  = fmt.Errorf("engine: allowance must be between 0 and %s", MaxAllowance)
	ErrBadGroupLimit = errors.New("engine: max_events_per_group must be at least 16")
)

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, ErrNoIssuer)
	}
	if c.CommandTTL <= 0 || c.CommandTTL > schemas.MaxCommandTTL {
		errs = append(errs, fmt.Errorf("%w (got %s)", ErrBadCommandTTL, c.CommandTTL))
	}
	if c.Allowance < 0 || c.Allowance > MaxAllowance {
		errs = append(errs, fmt.Errorf("%w (got %s)", ErrBadAllowance, c.Allowance))
	}
	if c.MaxEventsPerGroup < 16 {
		errs = append(errs, fmt.Errorf("%w (got %d)", ErrBadGroupLimit, c.MaxEventsPerGroup))
	}
	errs = append(errs, c.Context.validate()...)
	return errors.Join(errs...)
}
