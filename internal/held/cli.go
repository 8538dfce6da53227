package held

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Flags are the settings of the held command of either component:
// "detector held" and "consumer held" take the same ones.
type Flags struct {
	ID       string `flag:"id" usage:"command id of the held command (approve, reject)"`
	Approver string `flag:"approver" usage:"who approves or rejects, recorded with the decision (default: $USER)"`
	Reason   string `flag:"reason" usage:"why, recorded with the decision"`
	All      bool   `flag:"all" usage:"list decided held commands too"`
	Limit    int    `flag:"limit" usage:"most held commands to list"`
	JSON     bool   `flag:"json" usage:"print JSON lines instead of a table"`
}

// DefaultFlags lists up to DefaultListLimit commands, decided by approver.
func DefaultFlags(approver string) Flags { return Flags{Approver: approver, Limit: DefaultListLimit} }

// Actions of the held command.
var Actions = []string{"list", "approve", "reject"}

// Validate checks the flags an action needs.
func (f Flags) Validate(action string) error {
	var errs []error
	switch action {
	case "list":
		if f.Limit < 1 || f.Limit > 100000 {
			errs = append(errs, errors.New("-limit: must be in [1, 100000]"))
		}
	case "approve", "reject":
		if f.ID == "" {
			errs = append(errs, errors.New("-id: name the held command"))
		}
		if strings.TrimSpace(f.Approver) == "" {
			errs = append(errs, errors.New("-approver: name who decides (or set $USER)"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown held command %q (want list, approve or reject)", action))
	}
	return errors.Join(errs...)
}

// Run carries out action on src and prints the result to w: the list, or
// the command decided.
func Run(ctx context.Context, action string, f Flags, src Source, w io.Writer) error {
	if err := f.Validate(action); err != nil {
		return err
	}
	var list []Held
	var err error
	switch action {
	case "list":
		list, err = src.List(ctx, f.All, f.Limit)
	case "approve":
		var h Held
		h, err = src.Approve(ctx, f.ID, f.Approver, f.Reason)
		list = []Held{h}
	case "reject":
		var h Held
		h, err = src.Reject(ctx, f.ID, f.Approver, f.Reason)
		list = []Held{h}
	}
	if perr := Print(w, f.JSON, list...); perr != nil && err == nil {
		err = perr
	}
	return err
}

// Print writes held commands as a table, or as JSON lines. Entries
// without a command id (a failed decision's empty answer) are left out.
func Print(w io.Writer, asJSON bool, list ...Held) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, h := range list {
			if h.CommandID == "" {
				continue
			}
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return nil
	}
	const day = "2006-01-02 15:04:05"
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HELD AT (UTC)\tHELD BY\tSTATE\tCOMMAND\tTARGET\tRULE\tEXPIRES\tWHY\tDECIDED BY")
	n := 0
	for _, h := range list {
		if h.CommandID == "" {
			continue
		}
		n++
		by := ""
		if h.Decision != nil {
			by = h.Decision.By
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s:%s\t%s\t%s\t%s\t%s\n", stamp(h.HeldAt, day), h.HeldBy, h.State, h.CommandID,
			h.TargetKind, h.Target, h.RuleID, stamp(h.ExpiresAt, day), h.Reason, by)
	}
	if n == 0 {
		fmt.Fprintln(tw, "(no held commands)")
	}
	return tw.Flush()
}

func stamp(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(layout)
}
