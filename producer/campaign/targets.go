package campaign

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/schemas"
)

// Targets is what a campaign revokes: every id of one kind, in order.
type Targets struct {
	// Kind is user (a users file, a cohort, users from the audit trail) or
	// client (one client-wide command instead of a fan-out over its
	// users).
	Kind schemas.TargetKind
	IDs  []string
	// Skipped counts input lines left out: blank, comments and repeats.
	Skipped int
}

// ReadIDs reads a target list: one id per line, surrounding white space
// trimmed, blank lines and lines starting with # skipped, and repeats of an
// id dropped (keeping the first), so no target gets two commands. An id that
// no command could carry is an error naming its line.
func ReadIDs(r io.Reader, kind schemas.TargetKind) (Targets, error) {
	t := Targets{Kind: kind}
	seen := make(map[string]struct{})
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for line := 1; sc.Scan(); line++ {
		id := strings.TrimSpace(sc.Text())
		if id == "" || strings.HasPrefix(id, "#") {
			t.Skipped++
			continue
		}
		if err := checkTargetID(id); err != nil {
			return Targets{}, fmt.Errorf("line %d: %w", line, err)
		}
		if _, dup := seen[id]; dup {
			t.Skipped++
			continue
		}
		seen[id] = struct{}{}
		t.IDs = append(t.IDs, id)
	}
	if err := sc.Err(); err != nil {
		return Targets{}, fmt.Errorf("reading target ids: %w", err)
	}
	return t, nil
}

func checkTargetID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty id", ErrTargets)
	case len(id) > schemas.MaxIDLen:
		return fmt.Errorf("%w: id longer than %d bytes", ErrTargets, schemas.MaxIDLen)
	case strings.ContainsAny(id, "\x00\r\n"):
		return fmt.Errorf("%w: id contains control characters", ErrTargets)
	}
	return nil
}

// HistoryReader is the read side of the audit trail a campaign uses: the
// users of a time range and the outcome of its commands.
// audit.Store satisfies it.
type HistoryReader interface {
	// History returns the rows matching q, newest first.
	History(ctx context.Context, q audit.Query) ([]schemas.AuditRow, error)
}

var _ HistoryReader = audit.Store(nil)

// auditPage is how many rows one History call returns.
const auditPage = 10000

// UsersFromAudit lists the distinct user ids of the audit trail's rows with
// from <= time < to, sorted so that the same trail always gives the same
// list. It pages through History; rows appended while it reads only make it
// read some rows twice.
func UsersFromAudit(ctx context.Context, h HistoryReader, from, to time.Time) (Targets, error) {
	seen := make(map[string]struct{})
	err := pageHistory(ctx, h, audit.Query{From: from, To: to}, func(r *schemas.AuditRow) {
		if r.UserID != "" && checkTargetID(r.UserID) == nil {
			seen[r.UserID] = struct{}{}
		}
	})
	if err != nil {
		return Targets{}, fmt.Errorf("listing users from the audit trail: %w", err)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return Targets{Kind: schemas.TargetUser, IDs: ids}, nil
}

// pageHistory calls fn for every row q matches, a page at a time. Rows
// appended meanwhile shift later pages (the order is newest first), which
// makes some rows come twice but none go missing; fn must tolerate that.
func pageHistory(ctx context.Context, h HistoryReader, q audit.Query, fn func(*schemas.AuditRow)) error {
	q.Limit = auditPage
	for q.Offset = 0; ; q.Offset += auditPage {
		rows, err := h.History(ctx, q)
		if err != nil {
			return err
		}
		for i := range rows {
			fn(&rows[i])
		}
		if len(rows) < auditPage {
			return nil
		}
	}
}
