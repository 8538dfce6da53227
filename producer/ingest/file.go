package ingest

import (
	"context"
	"fmt"
	"os"
)

// IngestFile ingests the JSONL file at path (see Ingest), naming it by its
// path in dead-letter headers. It returns the file's size so a caller can
// size a progress bar before the first batch; the size is also the value
// of Result.Bytes once the whole file was read.
func (in *Ingester) IngestFile(ctx context.Context, path string, progress Progress) (Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return Result{Source: path}, fmt.Errorf("opening events file: %w", err)
	}
	defer f.Close()
	res, err := in.Ingest(ctx, f, path, progress)
	if err != nil {
		return res, err
	}
	in.log.Info().Str("source", path).Int64("lines", res.Lines).Int64("accepted", res.Accepted).
		Int64("rejected", res.RejectedTotal).Msg("file ingested")
	return res, nil
}

// FileSize is the size of the file at path in bytes, for a progress bar's
// total; zero when it cannot be known (a pipe, a missing file).
func FileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return 0
	}
	return st.Size()
}
