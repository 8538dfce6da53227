package chdbstore

import (
	"strconv"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit/internal/chsql"
	"github.com/revoked-dev/revoked/schemas"
)

// Rows go into the engine as TabSeparated text, written by hand: the
// engine parses it in about half the time it takes for JSONEachRow, and
// appending the fields costs a fraction of encoding/json's reflection.
// TabSeparated escapes backslash, tab, newline, carriage return, NUL,
// backspace and form feed with a backslash, so a field never holds a raw
// separator or a NUL (the statement is passed as a C string); an array is
// [...] of single-quoted strings, which escape the same characters and the
// quote. Strings are valid UTF-8 (audit.ValidateRow), written byte for
// byte.

// AppendTSVRow appends r's stored values (chsql.StoredRow) in column
// order (schemas.AuditColumns), tab-separated, and a newline: the data of
// an INSERT ... FORMAT TabSeparated as Append sends it (exported for the
// bench's raw insert of the same bytes).
func AppendTSVRow(b []byte, row *schemas.AuditRow) []byte {
	r := chsql.StoredRow(*row)
	tab := func(b []byte) []byte { return append(b, '\t') }
	b = appendTSVString(b, r.RowID)
	b = appendTSVString(tab(b), r.Chain)
	b = strconv.AppendUint(tab(b), r.Seq, 10)
	b = appendTSVTime(tab(b), r.Time)
	b = appendTSVString(tab(b), r.CommandID)
	b = appendTSVString(tab(b), string(r.Step))
	b = appendTSVString(tab(b), r.Detail)
	b = appendTSVString(tab(b), r.Issuer)
	b = appendTSVString(tab(b), r.Actor)
	b = appendTSVString(tab(b), r.Approver)
	b = appendTSVString(tab(b), string(r.TargetKind))
	b = appendTSVString(tab(b), r.UserID)
	b = appendTSVString(tab(b), r.TokenID)
	b = appendTSVString(tab(b), r.SessionID)
	b = appendTSVString(tab(b), r.ClientID)
	b = strconv.AppendUint(tab(b), uint64(chsql.Bool(r.IncludeDownscoped)), 10)
	b = appendTSVString(tab(b), string(r.Action))
	b = appendTSVString(tab(b), string(r.Mode))
	b = appendTSVString(tab(b), r.RuleID)
	b = strconv.AppendUint(tab(b), uint64(r.RuleVersion), 10)
	b = appendTSVString(tab(b), string(r.Severity))
	b = appendTSVString(tab(b), r.Summary)
	b = appendTSVArray(tab(b), r.Evidence)
	b = appendTSVArray(tab(b), r.EvidenceContext)
	b = appendTSVTime(tab(b), r.FirstEventTime)
	b = appendTSVTime(tab(b), r.LastEventTime)
	b = appendTSVTime(tab(b), r.DetectedAt)
	b = appendTSVTime(tab(b), r.IssuedAt)
	b = appendTSVTime(tab(b), r.ExpiresAt)
	b = strconv.AppendUint(tab(b), uint64(r.IdPStatus), 10)
	b = appendTSVString(tab(b), r.IdPResponse)
	b = strconv.AppendUint(tab(b), uint64(r.TokensRevoked), 10)
	b = appendTSVString(tab(b), r.Proof)
	b = strconv.AppendUint(tab(b), uint64(r.Attempts), 10)
	b = strconv.AppendInt(tab(b), r.DetectLatencyMs, 10)
	b = strconv.AppendInt(tab(b), r.RevokeLatencyMs, 10)
	b = appendTSVString(tab(b), r.SourceTopic)
	b = strconv.AppendInt(tab(b), int64(r.SourcePartition), 10)
	b = strconv.AppendInt(tab(b), r.SourceOffset, 10)
	b = appendTSVString(tab(b), r.PrevHash)
	b = appendTSVString(tab(b), r.Hash)
	return append(b, '\n')
}

func appendTSVString(b []byte, s string) []byte { return appendEscaped(b, s, false) }

// appendTSVArray appends an Array(String) value: [...] of single-quoted,
// escaped strings.
func appendTSVArray(b []byte, a []string) []byte {
	b = append(b, '[')
	for i, e := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '\'')
		b = appendEscaped(b, e, true)
		b = append(b, '\'')
	}
	return append(b, ']')
}

// appendEscaped appends s with TabSeparated's backslash escapes, and the
// single quote's too when quoted (an array element).
func appendEscaped(b []byte, s string, quoted bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch c := s[i]; c {
		case '\\':
			esc = '\\'
		case '\t':
			esc = 't'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case 0:
			esc = '0'
		case '\b':
			esc = 'b'
		case '\f':
			esc = 'f'
		case '\'':
			if !quoted {
				continue
			}
			esc = '\''
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', esc)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendTSVTime appends t, in UTC, as a DateTime64(3) value:
// 2006-01-02 15:04:05.000.
func appendTSVTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02 15:04:05.000")
}
