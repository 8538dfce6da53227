// Package audit is the audit trail's port: the Store every backend
// implements, the chain Writer that links rows into a hash chain and commits
// them in groups (and, given a key, signs checkpoints of the chain's head),
// and chain verification. Package trail verifies a whole trail, hash links
// and checkpoints, for auditors.
//
// Backends live in subpackages: chstore (a ClickHouse server over the
// native protocol), chdbstore (chDB, the ClickHouse engine in-process),
// memstore (in memory, for tests). backends opens one by name, and
// audittest is the contract suite they all pass.
package audit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/revoked-dev/revoked/schemas"
)

// Errors a Store or the Writer returns (wrapped) and what they mean.
var (
	// ErrInvalidRow: a row breaks the store's rules (ValidateRow). The same
	// rows will fail again; retrying is pointless.
	ErrInvalidRow = errors.New("invalid audit row")
	// ErrInvalidQuery: a Query's filters are inconsistent.
	ErrInvalidQuery = errors.New("invalid audit query")
	// ErrClosed: the Store or Writer was closed.
	ErrClosed = errors.New("audit store closed")
	// ErrChainBroken: VerifyChain found a link that does not hold; the
	// error is a *ChainError naming it.
	ErrChainBroken = errors.New("audit chain broken")
)

// Permanent reports whether err means that retrying the same call cannot
// succeed: the rows or the query are invalid, or the store is closed.
// Anything else from a Store (a network error, a timeout, a server error)
// is treated as transient: the store may be down or overloaded, and the
// rows, being deterministic, can be appended again safely.
func Permanent(err error) bool {
	return errors.Is(err, ErrInvalidRow) || errors.Is(err, ErrInvalidQuery) || errors.Is(err, ErrClosed)
}

// Store is where audit rows live: append-only, deduplicated by RowID.
//
// Every method may be called concurrently. ctx bounds each call; a call
// whose ctx ends returns an error wrapping ctx.Err() (embedded backends can
// only observe ctx between statements). Read methods return times in UTC at
// the backend's precision (milliseconds on modern ClickHouse and chDB,
// seconds on ClickHouse before 20.3; hashes cover seconds, so they hold on
// every backend) and the zero time.Time where a row has none.
type Store interface {
	// Migrate creates the database objects the store needs if they are
	// missing. It is idempotent and safe to run on every start.
	Migrate(ctx context.Context) error

	// Append stores rows. It blocks until the store has acknowledged them
	// (on ClickHouse: the insert has been committed), so a nil error means
	// the rows are durable. Appending a row whose RowID is already stored is
	// harmless: reads return one copy. Rows are checked with ValidateRow
	// first; if any is invalid nothing is stored and the error wraps
	// ErrInvalidRow. On any other error some of the rows may have been
	// stored; appending them again is the remedy.
	Append(ctx context.Context, rows []schemas.AuditRow) error

	// CommandRows returns every row of one command, one per RowID, ordered
	// by chain and Seq (the order the writer recorded them; a command's
	// rows normally share one chain). It returns no rows and no error for
	// an unknown command.
	CommandRows(ctx context.Context, commandID string) ([]schemas.AuditRow, error)

	// ChainHead returns the highest Seq of a chain and that row's Hash, or
	// 0 and "" when the chain has no rows.
	ChainHead(ctx context.Context, chain string) (seq uint64, hash string, err error)

	// ChainRows returns the rows of one chain with Seq > afterSeq in Seq
	// order, at most limit of them (all when limit <= 0): the input of
	// VerifyChain, paged by Seq. Identical copies of a row appear once, but
	// rows that differ are all returned, also when they share a Seq or a
	// RowID, so a verifier sees every conflicting copy.
	ChainRows(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.AuditRow, error)

	// History returns the rows matching q, one per RowID, newest first.
	History(ctx context.Context, q Query) ([]schemas.AuditRow, error)

	// Latest returns the time, at whole seconds, of the newest row q
	// selects (its Limit and Offset are ignored), or the zero time when q
	// selects none. It reads the time column and the columns q filters on,
	// nothing else: callers bound it with q.From.
	Latest(ctx context.Context, q Query) (time.Time, error)

	// TimePrecision is the precision at which the store keeps times:
	// time.Millisecond for DateTime64(3) columns, time.Second for DateTime
	// (ClickHouse before 20.3), or 0 while the store cannot tell (it has
	// not reached its backend yet).
	TimePrecision() time.Duration

	// Stats aggregates the rows q selects on the store's side (rows are not
	// fetched): outcome counts per bucket, rule and step, and latency
	// percentiles per bucket and over the range. Its semantics are
	// ComputeStats's, which every backend's result equals exactly. q is
	// validated first (StatsQuery.Validate); errors for an invalid query
	// wrap ErrInvalidQuery.
	Stats(ctx context.Context, q StatsQuery) (Stats, error)

	// AppendCheckpoints stores signed checkpoints of chains, with Append's
	// guarantees: durable when it returns nil, identical copies read back
	// once, nothing stored and an error wrapping ErrInvalidRow when one is
	// invalid (ValidateCheckpoint). It does not check signatures: that is
	// the verifier's job, with keys the store never sees.
	AppendCheckpoints(ctx context.Context, cps []schemas.Checkpoint) error

	// Checkpoints returns the checkpoints of one chain with Seq > afterSeq
	// in Seq order, at most limit of them (all when limit <= 0). Identical
	// copies appear once; checkpoints that differ are all returned, also
	// when they share a Seq.
	Checkpoints(ctx context.Context, chain string, afterSeq uint64, limit int) ([]schemas.Checkpoint, error)

	// Chains returns the names of every chain that has rows or checkpoints,
	// sorted, so a verifier also finds a chain whose rows are all gone.
	Chains(ctx context.Context) ([]string, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	// Close releases the store's resources. Calls after Close fail with
	// ErrClosed.
	Close() error
}

// HigherHead reports whether (seq, hash) is a higher chain head than
// (thanSeq, thanHash): a higher seq, or the same seq and the smaller hash.
// It is the order in which ChainHead picks a chain's head on every backend
// (ClickHouse: ORDER BY seq DESC, hash LIMIT 1).
func HigherHead(seq uint64, hash string, thanSeq uint64, thanHash string) bool {
	return seq > thanSeq || (seq == thanSeq && hash < thanHash)
}

// Query selects rows of the audit trail. Empty fields do not filter; set
// fields must all match.
type Query struct {
	UserID    string
	TokenID   string
	CommandID string
	RuleID    string
	Chain     string
	// Steps matches rows whose step is any of these.
	Steps []schemas.Step
	// Search, when set, matches rows in which one of SearchIn (every
	// SearchField when SearchIn is empty) starts with it: a prefix search
	// over the ids an analyst has at hand. It is compared byte for byte
	// (case matters) and must not look like a raw token: tokens are
	// searched by their id or fingerprint.
	Search   string
	SearchIn []SearchField
	// From and To select From <= time < To, compared at whole seconds
	// (both are truncated to the second) so every backend returns the same
	// rows. A zero From or To leaves that side open.
	From, To time.Time
	// Limit caps the rows returned (no cap when <= 0); Offset skips that
	// many rows of the newest-first order first.
	Limit, Offset int
}

// SearchField names a column Query.Search looks in.
type SearchField string

// The columns Query.Search looks in.
const (
	SearchUser    SearchField = "user_id"
	SearchToken   SearchField = "token_id"
	SearchSession SearchField = "session_id"
	SearchClient  SearchField = "client_id"
	SearchCommand SearchField = "command_id"
)

// SearchFields lists every SearchField, the primary key's user_id first.
var SearchFields = []SearchField{SearchUser, SearchToken, SearchSession, SearchClient, SearchCommand}

// MaxSearchLen caps Query.Search, in bytes.
const MaxSearchLen = 256

// Of returns the value of the field in r.
func (f SearchField) Of(r *schemas.AuditRow) string {
	switch f {
	case SearchUser:
		return r.UserID
	case SearchToken:
		return r.TokenID
	case SearchSession:
		return r.SessionID
	case SearchClient:
		return r.ClientID
	case SearchCommand:
		return r.CommandID
	}
	return ""
}

// SearchColumns returns the fields q.Search looks in: q.SearchIn, or
// every SearchField when that is empty.
func (q Query) SearchColumns() []SearchField {
	if len(q.SearchIn) == 0 {
		return SearchFields
	}
	return q.SearchIn
}

// Matches reports whether r passes q's filters (not its Limit and
// Offset): the reference every backend's History and Latest follow.
// Times are compared at whole seconds.
func (q Query) Matches(r *schemas.AuditRow) bool {
	t := r.Time.Truncate(time.Second)
	switch {
	case q.UserID != "" && r.UserID != q.UserID,
		q.TokenID != "" && r.TokenID != q.TokenID,
		q.CommandID != "" && r.CommandID != q.CommandID,
		q.RuleID != "" && r.RuleID != q.RuleID,
		q.Chain != "" && r.Chain != q.Chain,
		len(q.Steps) > 0 && !slices.Contains(q.Steps, r.Step),
		!q.From.IsZero() && t.Before(q.From.Truncate(time.Second)),
		!q.To.IsZero() && !t.Before(q.To.Truncate(time.Second)):
		return false
	}
	if q.Search == "" {
		return true
	}
	for _, f := range q.SearchColumns() {
		if strings.HasPrefix(f.Of(r), q.Search) {
			return true
		}
	}
	return false
}

// Validate reports every problem with the query at once.
func (q Query) Validate() error {
	var errs []error
	if len(q.Search) > MaxSearchLen {
		errs = append(errs, fmt.Errorf("%w: search is longer than %d bytes", ErrInvalidQuery, MaxSearchLen))
	}
	if !utf8.ValidString(q.Search) {
		errs = append(errs, fmt.Errorf("%w: search is not valid UTF-8", ErrInvalidQuery))
	}
	if kind := schemas.SecretKind(q.Search); kind != "" {
		// Never into a statement, where the server's query log would keep it.
		errs = append(errs, fmt.Errorf("%w: search looks like a raw token (%s); search by its id or fingerprint (%s…)", ErrInvalidQuery, kind, schemas.FingerprintPrefix))
	}
	for _, f := range q.SearchIn {
		if !slices.Contains(SearchFields, f) {
			errs = append(errs, fmt.Errorf("%w: cannot search in %q", ErrInvalidQuery, f))
		}
	}
	if q.Limit < 0 {
		errs = append(errs, fmt.Errorf("%w: limit %d is negative", ErrInvalidQuery, q.Limit))
	}
	if q.Offset < 0 {
		errs = append(errs, fmt.Errorf("%w: offset %d is negative", ErrInvalidQuery, q.Offset))
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		errs = append(errs, fmt.Errorf("%w: to %s is before from %s", ErrInvalidQuery, q.To.Format(time.RFC3339), q.From.Format(time.RFC3339)))
	}
	for _, t := range []time.Time{q.From, q.To} {
		if !t.IsZero() && (t.Before(MinTime) || t.After(MaxTime)) {
			errs = append(errs, fmt.Errorf("%w: time %s is outside [%s, %s]", ErrInvalidQuery, t.Format(time.RFC3339), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339)))
		}
	}
	return errors.Join(errs...)
}

// The range of timestamps every backend can store: ClickHouse's DateTime
// ends in February 2106, and the Unix epoch itself stands for "no time".
var (
	MinTime = time.Unix(1, 0).UTC()
	MaxTime = time.Date(2105, time.December, 31, 23, 59, 59, 0, time.UTC)
)

// RowError names the row and the field that made rows invalid.
type RowError struct {
	// Index is the row's position in the slice given to Append or Write.
	Index  int
	RowID  string
	Field  string
	Reason string
}

func (e *RowError) Error() string {
	return fmt.Sprintf("row %d (%s): %s: %s", e.Index, e.RowID, e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidRow) hold.
func (e *RowError) Unwrap() error { return ErrInvalidRow }

// rawTokenPattern matches a JWT (three base64url segments, the header
// starting with `{"`), the shape of access and refresh tokens that must
// never be stored. Opaque tokens cannot be recognised; they are kept out
// by the components that handle them.
var rawTokenPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)

// holdsRawToken reports whether s matches rawTokenPattern. Every match
// starts with "eyJ", and looking for that first costs a fraction of
// running the regexp, which the Writer and the stores do for every string
// of every row.
func holdsRawToken(s string) bool {
	return strings.Contains(s, "eyJ") && rawTokenPattern.MatchString(s)
}

// ValidateRow checks what every backend relies on: the identifying and
// chain fields are set, strings are valid UTF-8 (so every backend returns
// them byte for byte and hashes hold), no field holds a raw token, and
// timestamps are zero or within [MinTime, MaxTime]. index goes into the
// *RowError.
func ValidateRow(index int, r *schemas.AuditRow) error {
	if err := validateContent(index, r); err != nil {
		return err
	}
	fail := func(field, reason string) error {
		return &RowError{Index: index, RowID: r.RowID, Field: field, Reason: reason}
	}
	switch {
	case r.Chain == "":
		return fail("chain", "is empty")
	case r.Seq == 0:
		return fail("seq", "is zero (chains start at 1)")
	case r.Hash == "":
		return fail("hash", "is empty")
	case r.Seq == 1 && r.PrevHash != "":
		return fail("prev_hash", "is set on the first row of a chain")
	case r.Seq > 1 && r.PrevHash == "":
		return fail("prev_hash", "is empty after the first row of a chain")
	}
	return nil
}

// validateContent checks everything ValidateRow does except the fields the
// Writer assigns (Chain, Seq, PrevHash, Hash).
func validateContent(index int, r *schemas.AuditRow) error {
	fail := func(field, reason string) error {
		return &RowError{Index: index, RowID: r.RowID, Field: field, Reason: reason}
	}
	switch {
	case r.RowID == "":
		return fail("row_id", "is empty")
	case r.CommandID == "":
		return fail("command_id", "is empty")
	case r.Step == "":
		return fail("step", "is empty")
	case r.Time.IsZero():
		return fail("time", "is zero")
	}
	for _, f := range stringFields(r) {
		if !utf8.ValidString(f.v) {
			return fail(f.name, "is not valid UTF-8")
		}
		if holdsRawToken(f.v) {
			return fail(f.name, "holds what looks like a raw token (a JWT); store its fingerprint")
		}
	}
	for _, list := range []struct {
		name string
		v    []string
	}{{"evidence", r.Evidence}, {"evidence_context", r.EvidenceContext}} {
		for i, e := range list.v {
			if !utf8.ValidString(e) {
				return fail(fmt.Sprintf("%s[%d]", list.name, i), "is not valid UTF-8")
			}
			if holdsRawToken(e) {
				return fail(fmt.Sprintf("%s[%d]", list.name, i), "holds what looks like a raw token (a JWT)")
			}
		}
	}
	for _, f := range timeFields(r) {
		if t := *f.v; !t.IsZero() && (t.Before(MinTime) || t.After(MaxTime)) {
			return fail(f.name, fmt.Sprintf("%s is outside [%s, %s]", t.UTC().Format(time.RFC3339), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339)))
		}
	}
	return nil
}

// ValidateCheckpoint checks what every backend relies on for a
// checkpoint: every field is set, strings are valid UTF-8 and the time is
// within [MinTime, MaxTime]. It does not check the signature. index goes
// into the *RowError (whose RowID is then the chain).
func ValidateCheckpoint(index int, c *schemas.Checkpoint) error {
	fail := func(field, reason string) error {
		return &RowError{Index: index, RowID: c.Chain, Field: field, Reason: reason}
	}
	for _, f := range []stringField{{"chain", c.Chain}, {"hash", c.Hash}, {"key_id", c.KeyID}, {"signature", c.Signature}} {
		if f.v == "" {
			return fail(f.name, "is empty")
		}
		if !utf8.ValidString(f.v) {
			return fail(f.name, "is not valid UTF-8")
		}
	}
	switch {
	case c.Seq == 0:
		return fail("seq", "is zero (chains start at 1)")
	case c.Time.Before(MinTime) || c.Time.After(MaxTime):
		return fail("time", fmt.Sprintf("%s is outside [%s, %s]", c.Time.UTC().Format(time.RFC3339), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339)))
	}
	return nil
}

// ValidateCheckpoints runs ValidateCheckpoint over cps and returns the
// first problem.
func ValidateCheckpoints(cps []schemas.Checkpoint) error {
	for i := range cps {
		if err := ValidateCheckpoint(i, &cps[i]); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRows runs ValidateRow over rows and returns the first problem.
func ValidateRows(rows []schemas.AuditRow) error {
	for i := range rows {
		if err := ValidateRow(i, &rows[i]); err != nil {
			return err
		}
	}
	return nil
}

type stringField struct {
	name string
	v    string
}

// stringFields lists a row's free string fields (typed enum fields are
// checked through their string form by the same loop).
func stringFields(r *schemas.AuditRow) [23]stringField {
	return [...]stringField{
		{"row_id", r.RowID}, {"chain", r.Chain}, {"command_id", r.CommandID}, {"step", string(r.Step)},
		{"detail", r.Detail}, {"issuer", r.Issuer}, {"actor", r.Actor}, {"approver", r.Approver},
		{"target_kind", string(r.TargetKind)}, {"user_id", r.UserID}, {"token_id", r.TokenID}, {"session_id", r.SessionID},
		{"client_id", r.ClientID}, {"action", string(r.Action)}, {"mode", string(r.Mode)}, {"rule_id", r.RuleID},
		{"severity", string(r.Severity)}, {"summary", r.Summary}, {"idp_response", r.IdPResponse}, {"proof", r.Proof},
		{"source_topic", r.SourceTopic}, {"prev_hash", r.PrevHash}, {"hash", r.Hash},
	}
}

type timeField struct {
	name string
	v    *time.Time
}

func timeFields(r *schemas.AuditRow) [6]timeField {
	return [...]timeField{
		{"time", &r.Time}, {"first_event_time", &r.FirstEventTime}, {"last_event_time", &r.LastEventTime}, {"detected_at", &r.DetectedAt},
		{"issued_at", &r.IssuedAt}, {"expires_at", &r.ExpiresAt},
	}
}

// Normalize prepares a row the way the Writer does before hashing it:
// timestamps in UTC truncated to the millisecond (the finest precision any
// backend keeps), invalid UTF-8 replaced by U+FFFD, and anything shaped
// like a raw token (a JWT) in a free-text field replaced by its
// fingerprint. Rows normalized this way read back from every backend as
// they went in, up to the backend's time precision.
func Normalize(r *schemas.AuditRow) {
	for _, f := range timeFields(r) {
		if f.v.IsZero() {
			continue
		}
		*f.v = f.v.UTC().Truncate(time.Millisecond)
	}
	fix := func(s string) string {
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
		}
		if holdsRawToken(s) {
			s = rawTokenPattern.ReplaceAllStringFunc(s, schemas.Fingerprint)
		}
		return s
	}
	for _, p := range []*string{
		&r.RowID, &r.CommandID, &r.Detail, &r.Issuer, &r.Actor, &r.Approver, &r.UserID, &r.TokenID,
		&r.SessionID, &r.ClientID, &r.RuleID, &r.Summary, &r.IdPResponse, &r.Proof, &r.SourceTopic,
	} {
		*p = fix(*p)
	}
	r.Step = schemas.Step(fix(string(r.Step)))
	r.TargetKind = schemas.TargetKind(fix(string(r.TargetKind)))
	r.Action = schemas.Action(fix(string(r.Action)))
	r.Mode = schemas.Mode(fix(string(r.Mode)))
	r.Severity = schemas.Severity(fix(string(r.Severity)))
	for _, list := range []*[]string{&r.Evidence, &r.EvidenceContext} {
		if len(*list) > 0 {
			fixed := make([]string, len(*list))
			for i, e := range *list {
				fixed[i] = fix(e)
			}
			*list = fixed
		}
	}
}
