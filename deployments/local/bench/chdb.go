package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// rawChDB is a plain connection to chDB through libchdb's C API, the
// calls chdb-go and chdbstore make (chdb_connect, chdb_query,
// chdb_result_*), without anything of the project's store around them:
// the baseline of the audit part.
//
// chDB keeps one data directory per process, shared by every connection
// to it; chdb_close_conn closes it for all. So a rawChDB is opened only
// while no audit store of this process has chDB open, and closed before
// one opens it again.
type rawChDB struct {
	lib    *chdbLib
	handle unsafe.Pointer // chdb_connection *
	conn   unsafe.Pointer // chdb_connection
}

type chdbLib struct {
	connect     func(argc int32, argv **byte) unsafe.Pointer
	closeConn   func(conn unsafe.Pointer)
	query       func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	destroy     func(res unsafe.Pointer)
	length      func(res unsafe.Pointer) uintptr
	buffer      func(res unsafe.Pointer) *byte
	errorString func(res unsafe.Pointer) string
}

// chdbLibs holds the bound library by path: dlopen hands the same
// library back to every open of one file, and binding it once is enough.
var chdbLibs struct {
	mu   sync.Mutex
	libs map[string]*chdbLib
}

func loadChDB(path string) (*chdbLib, error) {
	chdbLibs.mu.Lock()
	defer chdbLibs.mu.Unlock()
	if lib, ok := chdbLibs.libs[path]; ok {
		return lib, nil
	}
	handle, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", path, err)
	}
	lib := &chdbLib{}
	for _, f := range []struct {
		name string
		fptr any
	}{
		{"chdb_connect", &lib.connect},
		{"chdb_close_conn", &lib.closeConn},
		{"chdb_query", &lib.query},
		{"chdb_destroy_query_result", &lib.destroy},
		{"chdb_result_length", &lib.length},
		{"chdb_result_buffer", &lib.buffer},
		{"chdb_result_error", &lib.errorString},
	} {
		sym, err := purego.Dlsym(handle, f.name)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", path, err)
		}
		purego.RegisterFunc(f.fptr, sym)
	}
	if chdbLibs.libs == nil {
		chdbLibs.libs = map[string]*chdbLib{}
	}
	chdbLibs.libs[path] = lib
	return lib, nil
}

// openRawChDB connects to chDB on the data directory dir.
func openRawChDB(libPath, dir string) (*rawChDB, error) {
	lib, err := loadChDB(libPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	args := []string{"clickhouse", "--path=" + dir}
	argv := make([]*byte, len(args)+1)
	for i, a := range args {
		b := append([]byte(a), 0)
		argv[i] = &b[0]
	}
	handle := lib.connect(int32(len(args)), &argv[0])
	runtime.KeepAlive(argv)
	if handle == nil || *(*unsafe.Pointer)(handle) == nil {
		return nil, fmt.Errorf("chDB could not open %s (its reason is on stderr)", dir)
	}
	return &rawChDB{lib: lib, handle: handle, conn: *(*unsafe.Pointer)(handle)}, nil
}

// exec runs one statement and returns its output in format.
func (c *rawChDB) exec(sql, format string) ([]byte, error) {
	res := c.lib.query(c.conn, sql, format)
	if res == nil {
		return nil, nil
	}
	defer c.lib.destroy(res)
	if msg := c.lib.errorString(res); msg != "" {
		return nil, errors.New("chDB: " + msg)
	}
	n, p := c.lib.length(res), c.lib.buffer(res)
	if n == 0 || p == nil {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice(p, n)...), nil
}

func (c *rawChDB) close() { c.lib.closeConn(c.handle) }
