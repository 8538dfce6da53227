package config

import (
	"errors"
	"fmt"
)

// FieldError is one problem with one configuration field. It matches
// ErrInvalid with errors.Is.
type FieldError struct {
	// Field names the offending setting, dotted for nested settings
	// ("kafka.brokers"), as it is spelled in flags.
	Field string
	// Problem says what is wrong, in words an operator can act on.
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// Unwrap makes every FieldError match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Problems collects every problem a Validate method finds so that an
// operator sees all of them at once instead of fixing one per restart. The
// zero value is ready to use.
//
//	func (c Config) Validate() error {
//		var p config.Problems
//		p.Check(len(c.Brokers) > 0, "brokers", "at least one broker is required")
//		p.Nest("tls", c.TLS.Validate())
//		return p.Err()
//	}
type Problems struct {
	errs []error
}

// Addf records a problem with field.
func (p *Problems) Addf(field, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Check records a problem with field unless ok holds.
func (p *Problems) Check(ok bool, field, format string, args ...any) {
	if !ok {
		p.Addf(field, format, args...)
	}
}

// Add records err as is; nil is ignored.
func (p *Problems) Add(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Nest records the problems of a nested configuration, typically the result
// of its own Validate, naming its fields under prefix. Joined errors are
// flattened so each problem stays on its own line.
func (p *Problems) Nest(prefix string, err error) {
	for _, e := range flatten(err) {
		var fe *FieldError
		if errors.As(e, &fe) && prefix != "" {
			field := prefix
			if fe.Field != "" {
				field = prefix + "." + fe.Field
			}
			e = &FieldError{Field: field, Problem: fe.Problem}
		}
		p.errs = append(p.errs, e)
	}
}

// Len is the number of problems recorded so far.
func (p *Problems) Len() int { return len(p.errs) }

// Err returns every recorded problem joined with errors.Join, or nil when
// there are none.
func (p *Problems) Err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return errors.Join(p.errs...)
}

// flatten unpacks errors.Join trees into their leaves.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
