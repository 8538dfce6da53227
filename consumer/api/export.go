package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/revoked-dev/revoked/consumer/audit"
	"github.com/revoked-dev/revoked/consumer/export"
	"github.com/revoked-dev/revoked/internal/ops"
	"github.com/revoked-dev/revoked/schemas"
)

// Limits of /api/v1/export.
const (
	// MaxExportRows caps one download; narrow the filters for more.
	MaxExportRows = 1_000_000
	// exportPage is how many rows one History call of an export reads.
	exportPage = 1000
)

// rowWriter is what export's row writers have in common. Flush sends what
// is buffered (a no-op for Parquet, whose row groups go out as they fill);
// Close ends the file (Parquet's footer).
type rowWriter interface {
	Write(r *schemas.AuditRow) error
	Flush() error
	Close() error
}

// parquetRows adapts export.ParquetWriter to rowWriter.
type parquetRows struct{ *export.ParquetWriter }

func (parquetRows) Flush() error { return nil }

// ExportRequest is a parsed /api/v1/export request.
type ExportRequest struct {
	Format export.Format
	// Query has the filters of ParseQuery; its Limit is the most rows to
	// write (MaxExportRows unless limit is given).
	Query audit.Query
}

// ParseExportQuery reads an export request: format (csv, the default,
// jsonl or parquet), the filters of ParseQuery, and limit up to MaxExportRows (default:
// every matching row, up to that cap). It reports every problem at once.
func ParseExportQuery(v map[string][]string) (ExportRequest, error) {
	var errs []error
	req := ExportRequest{Format: export.CSV}
	switch f := first(v, "format"); f {
	case "", "csv":
	case "jsonl":
		req.Format = export.JSONL
	case "parquet":
		req.Format = export.Parquet
	default:
		errs = append(errs, fmt.Errorf("format: %q is not csv, jsonl or parquet", f))
	}
	rest := url.Values{}
	for k, vs := range v {
		if k != "limit" && k != "format" {
			rest[k] = vs
		}
	}
	q, err := ParseQuery(rest)
	errs = append(errs, err)
	q.Limit = MaxExportRows
	errs = append(errs, parseInt(v, "limit", &q.Limit, 1, MaxExportRows))
	req.Query = q
	return req, errors.Join(errs...)
}

// export streams every row matching the filters, newest first, as a file
// download. It pages through History; the first page is read before
// anything is written, so a store that is down still gets a JSON 503. A
// failure later cuts the connection, so the client sees a broken download
// rather than a short file that looks complete.
func (a *API) export(w http.ResponseWriter, r *http.Request) {
	req, err := ParseExportQuery(r.URL.Query())
	if err != nil {
		ops.WriteJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	q := req.Query
	now := time.Now().UTC()
	// Rows written while the export runs would shift the newest-first
	// pages under it: the export covers the trail up to when it started.
	if end := now.Add(time.Second); q.To.IsZero() || q.To.After(end) {
		q.To = end
	}
	remaining := q.Limit
	page := func(offset int) ([]schemas.AuditRow, error) {
		pq := q
		pq.Offset, pq.Limit = offset, min(exportPage, remaining)
		return a.store.History(r.Context(), pq)
	}
	rows, err := page(q.Offset)
	if err != nil {
		a.storeError(w, err, "export query failed")
		return
	}

	ext, ctype := "csv", "text/csv; charset=utf-8"
	switch req.Format {
	case export.JSONL:
		ext, ctype = "jsonl", "application/x-ndjson; charset=utf-8"
	case export.Parquet:
		ext, ctype = "parquet", "application/vnd.apache.parquet"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="revocations-%s.%s"`, now.Format("20060102T150405Z"), ext))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	var out rowWriter
	switch req.Format {
	case export.JSONL:
		out = export.NewJSONLWriter(w)
	case export.Parquet:
		out = parquetRows{export.NewParquetWriter(w)}
	default:
		if out, err = export.NewCSVWriter(w); err != nil {
			return // the client went away
		}
	}
	rc := http.NewResponseController(w)
	offset, written := q.Offset, 0
	// A row stored late, with a time inside the range, shifts the pages
	// by one: the previous page's row ids keep it from being written twice.
	var prev map[string]bool
	for {
		seen := make(map[string]bool, len(rows))
		for i := range rows {
			seen[rows[i].RowID] = true
			if prev[rows[i].RowID] {
				continue
			}
			if err := out.Write(&rows[i]); err != nil {
				return // the client went away
			}
			written++
		}
		if err := out.Flush(); err != nil {
			return
		}
		_ = rc.Flush()
		remaining -= len(rows)
		if len(rows) < exportPage || remaining <= 0 {
			break
		}
		offset += len(rows)
		prev = seen
		if rows, err = page(offset); err != nil {
			a.log.Error().Err(err).Int("rows_written", written).Msg("export query failed mid-stream; aborting the download")
			panic(http.ErrAbortHandler)
		}
	}
	if err := out.Close(); err != nil {
		return
	}
	a.log.Debug().Int("rows", written).Str("format", ext).Msg("export served")
}
