package ssf

import (
	"errors"
	"fmt"
)

// Error codes of a SET Recipient's error response: RFC 8935 section 2.4
// (push) and RFC 8936 section 2.4.4 (poll, in setErrs), registered in the
// "Security Event Token Error Codes" registry; invalid_state is SSF 1.0's,
// for a verification event whose state the receiver did not ask for.
const (
	// ErrCodeInvalidRequest: the request body cannot be parsed as a SET,
	// or the event payload does not conform to the event's definition.
	ErrCodeInvalidRequest = "invalid_request"
	// ErrCodeInvalidKey: a key used to sign the SET is invalid or
	// unacceptable (unknown, or the signature does not verify with it).
	ErrCodeInvalidKey = "invalid_key"
	// ErrCodeInvalidIssuer: the SET's issuer is not the one expected.
	ErrCodeInvalidIssuer = "invalid_issuer"
	// ErrCodeInvalidAudience: the SET's audience is not this recipient.
	ErrCodeInvalidAudience = "invalid_audience"
	// ErrCodeAuthenticationFailed: the recipient could not authenticate
	// the transmitter (the HTTP request's credentials).
	ErrCodeAuthenticationFailed = "authentication_failed"
	// ErrCodeAccessDenied: the transmitter may not send this SET here.
	ErrCodeAccessDenied = "access_denied"
	// ErrCodeInvalidState: a verification event's state is not one the
	// receiver asked for (SSF 1.0 section 8.1.4.1).
	ErrCodeInvalidState = "invalid_state"
)

// ErrInvalidSET is wrapped by every *SETError.
var ErrInvalidSET = errors.New("invalid security event token")

// SETError is why a SET was refused, as a recipient reports it: Code is
// one of the ErrCode* values, Description says what was wrong in words
// safe to return to the transmitter (never a key, never a token).
type SETError struct {
	Code        string
	Description string
}

func (e *SETError) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Description)
}

// Unwrap makes every SETError match ErrInvalidSET.
func (e *SETError) Unwrap() error { return ErrInvalidSET }

// Errorf returns a *SETError with code and a formatted description.
func Errorf(code, format string, args ...any) *SETError {
	return &SETError{Code: code, Description: fmt.Sprintf(format, args...)}
}

// ErrorBody is the JSON of an RFC 8935 error response and of one entry of
// an RFC 8936 setErrs object.
type ErrorBody struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// Body returns the JSON body that reports e.
func (e *SETError) Body() ErrorBody { return ErrorBody{Err: e.Code, Description: e.Description} }

// AsSETError returns the *SETError err wraps, or one with code
// invalid_request describing err.
func AsSETError(err error) *SETError {
	var se *SETError
	if errors.As(err, &se) {
		return se
	}
	return &SETError{Code: ErrCodeInvalidRequest, Description: err.Error()}
}
