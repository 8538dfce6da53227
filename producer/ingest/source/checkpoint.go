package source

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Checkpoint is where a stream was read to: the cursor to resume from and
// the ids of the records published last (the deduplication window).
//
// It is kept in a file rather than on a compacted Kafka topic: a stream
// has one reader at a time, which alone writes its cursor; a file
// written whole and renamed into place is durable at the moment the
// rename returns, readable by an operator (cat, jq) and editable to
// replay from an older position; and the cursor does not depend on the
// Kafka cluster it feeds, so a recreated topic does not rewind the
// vendor's stream. The reader needs a persistent volume for it.
type Checkpoint struct {
	// Source names the stream ("box-events", "okta-logs"); a checkpoint
	// of another stream is refused.
	Source string `json:"source"`
	// Cursor is the vendor's position to resume from: a Box
	// stream_position, an Okta next link.
	Cursor string `json:"cursor"`
	// Seen are the ids of the records published last, oldest first.
	Seen []string `json:"seen,omitempty"`
	// UpdatedAt is when the checkpoint was written.
	UpdatedAt time.Time `json:"updated_at"`
}

// FileStore keeps a checkpoint in one file.
type FileStore struct {
	path   string
	source string
}

// NewFileStore returns the store of source's checkpoint at path. The
// directory must exist.
func NewFileStore(path, source string) (*FileStore, error) {
	if path == "" {
		return nil, errors.New("checkpoint: no file given")
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("checkpoint directory %s is not a directory", filepath.Dir(path))
	}
	return &FileStore{path: path, source: source}, nil
}

// Path is the checkpoint file's path.
func (f *FileStore) Path() string { return f.path }

// Load returns the checkpoint, and false when there is none yet.
func (f *FileStore) Load() (Checkpoint, bool, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{Source: f.source}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("reading checkpoint: %w", err)
	}
	var c Checkpoint
	if err := json.Unmarshal(data, &c); err != nil {
		return Checkpoint{}, false, fmt.Errorf("reading checkpoint %s: %w", f.path, err)
	}
	if c.Source != f.source {
		return Checkpoint{}, false, fmt.Errorf("checkpoint %s is of source %q, not %q", f.path, c.Source, f.source)
	}
	return c, true, nil
}

// Save writes c in place of the file's checkpoint, atomically: it writes
// a temporary file in the same directory, syncs it, renames it over the
// checkpoint and syncs the directory, so a crash leaves either the old
// checkpoint or the new one, whole.
func (f *FileStore) Save(c Checkpoint) error {
	c.Source = f.source
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*")
	if err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("renaming checkpoint into place: %w", err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing checkpoint directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing checkpoint directory: %w", err)
	}
	return nil
}
