package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/revoked-dev/revoked/schemas"
)

// The spool file is a sequence of records, each
//
//	length  uint32, big endian: the bytes of kind and body
//	crc     uint32, big endian: CRC-32C of kind and body
//	kind    1 byte: kindRows, kindCheckpoints or kindLedger
//	body    JSON: []schemas.AuditRow, []schemas.Checkpoint or ledgerRecord
//
// A record is appended with one write and fsynced before the append
// returns. A crash can only tear the last record: Open finds it by its
// length or its CRC and truncates the file before it. The ledger file
// (LedgerFileName) is framed the same way and holds only kindLedger
// records.
const (
	headerSize = 8
	// maxRecord bounds a record's length so a torn length field cannot
	// make Open allocate gigabytes; one Writer batch is far smaller.
	maxRecord = 256 << 20

	kindRows        byte = 1
	kindCheckpoints byte = 2
	kindLedger      byte = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks a record that is incomplete or fails its CRC.
var errTorn = errors.New("torn or corrupt spool record")

// record is one decoded record.
type record struct {
	kind byte
	rows []schemas.AuditRow
	cps  []schemas.Checkpoint
	led  *ledgerRecord
}

func (r *record) len() int { return len(r.rows) + len(r.cps) }

// encode returns the record's bytes, header included.
func encode(r *record) ([]byte, error) {
	var body []byte
	var err error
	switch r.kind {
	case kindRows:
		body, err = json.Marshal(r.rows)
	case kindCheckpoints:
		body, err = json.Marshal(r.cps)
	case kindLedger:
		body, err = json.Marshal(r.led)
	default:
		return nil, fmt.Errorf("unknown spool record kind %d", r.kind)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding a spool record: %w", err)
	}
	n := 1 + len(body)
	if n > maxRecord {
		return nil, fmt.Errorf("spool record of %d bytes is over the %d byte limit", n, maxRecord)
	}
	buf := make([]byte, headerSize+n)
	binary.BigEndian.PutUint32(buf[0:4], uint32(n))
	buf[headerSize] = r.kind
	copy(buf[headerSize+1:], body)
	binary.BigEndian.PutUint32(buf[4:8], crc32.Checksum(buf[headerSize:], castagnoli))
	return buf, nil
}

// readRecord reads the record at off and returns it with its size on
// disk. An incomplete record, a bad length, a CRC mismatch or a body that
// does not decode wrap errTorn; other errors are the file's.
func readRecord(f io.ReaderAt, off int64) (*record, int64, error) {
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("%w: header at offset %d is incomplete", errTorn, off)
		}
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(hdr[0:4])
	if n < 1 || n > maxRecord {
		return nil, 0, fmt.Errorf("%w: length %d at offset %d", errTorn, n, off)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off+headerSize); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("%w: body at offset %d is incomplete", errTorn, off)
		}
		return nil, 0, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(hdr[4:8]) {
		return nil, 0, fmt.Errorf("%w: CRC mismatch at offset %d", errTorn, off)
	}
	r := &record{kind: buf[0]}
	var err error
	switch r.kind {
	case kindRows:
		err = json.Unmarshal(buf[1:], &r.rows)
	case kindCheckpoints:
		err = json.Unmarshal(buf[1:], &r.cps)
	case kindLedger:
		r.led = new(ledgerRecord)
		err = json.Unmarshal(buf[1:], r.led)
	default:
		err = fmt.Errorf("unknown kind %d", r.kind)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: record at offset %d does not decode: %v", errTorn, off, err)
	}
	return r, headerSize + int64(n), nil
}

// syncDir makes a file's creation in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
