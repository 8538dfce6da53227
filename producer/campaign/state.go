package campaign

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/revoked-dev/revoked/schemas"
)

// State is a campaign's durable checkpoint, kept as <state-dir>/<id>.json
// beside the frozen target list <id>.targets. It is rewritten atomically
// (temporary file, fsync, rename, fsync of the directory) after every batch
// Kafka acknowledged, so after a crash it names exactly the targets whose
// commands are known to be published.
type State struct {
	CampaignID string             `json:"campaign_id"`
	Kind       schemas.TargetKind `json:"kind"`
	// InputHash is the SHA-256 of the kind and the target ids in order
	// (see HashTargets); a resumed run must present the same input.
	InputHash string `json:"input_hash"`
	Total     int    `json:"total"`
	// Next is the index of the first target whose command has not been
	// acknowledged: targets [0, Next) are published.
	Next int `json:"next"`
	// Marks are the command topic's partition end offsets measured after
	// the batch ending at Next was acknowledged and before the next one
	// was sent: whatever a crashed run published after the checkpoint
	// lies at or above them.
	Marks map[int]int64 `json:"marks,omitempty"`

	// The settings that shape the commands; a resumed run must not change
	// them, or one campaign would issue two kinds of command.
	Action            schemas.Action   `json:"action"`
	Mode              schemas.Mode     `json:"mode"`
	IncludeDownscoped bool             `json:"include_downscoped"`
	Severity          schemas.Severity `json:"severity"`
	Summary           string           `json:"summary"`
	Reason            string           `json:"reason,omitempty"`
	Operator          string           `json:"operator"`

	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Runs counts the runs that published something, so the report can
	// tell an interrupted campaign from one that went straight through.
	Runs int `json:"runs"`
	// ReportCommandID is the notify command that carries the final report,
	// set once Kafka acknowledged it.
	ReportCommandID string `json:"report_command_id,omitempty"`
}

// Complete reports whether every target's command and the final report
// are published.
func (s *State) Complete() bool { return s.Next >= s.Total && s.ReportCommandID != "" }

// HashTargets is the input hash a State records: SHA-256 over the kind and
// every id, each line-terminated.
func HashTargets(kind schemas.TargetKind, ids []string) string {
	h := sha256.New()
	_, _ = io.WriteString(h, string(kind)+"\n")
	for _, id := range ids {
		_, _ = io.WriteString(h, id+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

func statePath(dir, id string) string   { return filepath.Join(dir, id+".json") }
func targetsPath(dir, id string) string { return filepath.Join(dir, id+".targets") }

// LoadState reads the checkpoint of campaign id from dir. It returns an
// error wrapping fs.ErrNotExist when the campaign has never run there.
func LoadState(dir, id string) (*State, error) {
	data, err := os.ReadFile(statePath(dir, id))
	if err != nil {
		return nil, fmt.Errorf("reading campaign state: %w", err)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding campaign state %s: %w", statePath(dir, id), err)
	}
	if s.CampaignID != id || s.Next < 0 || s.Next > s.Total {
		return nil, fmt.Errorf("campaign state %s is inconsistent (id %q, next %d of %d)", statePath(dir, id), s.CampaignID, s.Next, s.Total)
	}
	return &s, nil
}

func saveState(dir string, s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(statePath(dir, s.CampaignID), append(data, '\n'))
}

// loadTargets reads the frozen target list of a campaign and checks it
// against the state's hash.
func loadTargets(dir string, s *State) ([]string, error) {
	f, err := os.Open(targetsPath(dir, s.CampaignID))
	if err != nil {
		return nil, fmt.Errorf("reading the campaign's target list: %w", err)
	}
	defer func() { _ = f.Close() }()
	ids := make([]string, 0, s.Total)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		ids = append(ids, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the campaign's target list: %w", err)
	}
	if got := HashTargets(s.Kind, ids); got != s.InputHash || len(ids) != s.Total {
		return nil, fmt.Errorf("%w: %s holds %d targets hashing to %s, the state expects %d hashing to %s",
			ErrInputChanged, targetsPath(dir, s.CampaignID), len(ids), got, s.Total, s.InputHash)
	}
	return ids, nil
}

func saveTargets(dir, id string, ids []string) error {
	var b strings.Builder
	for _, t := range ids {
		b.WriteString(t)
		b.WriteByte('\n')
	}
	return writeAtomic(targetsPath(dir, id), []byte(b.String()))
}

// writeAtomic replaces path with data so that a crash leaves either the old
// file or the new one, never a torn one: write a temporary file in the same
// directory, fsync it, rename it over path, fsync the directory.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
