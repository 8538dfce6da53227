package chdbstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// Errors of the embedded engine.
var (
	// ErrLibrary: libchdb.so could not be loaded (missing, wrong platform,
	// or a build without the functions this package calls).
	ErrLibrary = errors.New("loading libchdb")
	// ErrBusy: this process already has another chDB data directory open;
	// chDB runs one per process.
	ErrBusy = errors.New("chDB already has another data directory open in this process")
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("chDB data directory is held by another process")
)

// The engine is process-wide state by nature: libchdb is loaded once and
// can be unloaded never, and it keeps one data directory ("connection")
// per process. chdb-go models this with package-level state too, and it
// loads the library in an init function that panics when the library is
// missing, which would stop every binary that links this package (the
// consumer configured for a ClickHouse server included) and keep tests
// from skipping. This file therefore binds the same C functions chdb-go
// v1.11 binds (chdb_connect, chdb_query, chdb_result_*, ...), with
// purego as chdb-go does, but loads the library on first Open and reports
// failures as errors.
var engine struct {
	mu      sync.Mutex
	lib     *library
	libPath string
	conns   map[string]*sharedConn // by absolute data directory
	// thread is where every call into the library runs, from the first
	// connection on; like the library, it stays for the process's life:
	// with a thread per connection, ended when the connection closed,
	// the next connection crashed the process (SIGSEGV in the engine).
	thread *engineThread
	// threadStarted: thread is set (nil included, for nice < 1).
	threadStarted bool
}

// library holds the bound C functions of libchdb.
type library struct {
	connect     func(argc int32, argv **byte) unsafe.Pointer // chdb_connection *
	closeConn   func(conn unsafe.Pointer)                    // chdb_connection *
	query       func(conn unsafe.Pointer, query, format string) unsafe.Pointer
	destroy     func(res unsafe.Pointer)
	buffer      func(res unsafe.Pointer) *byte
	length      func(res unsafe.Pointer) uintptr
	errorString func(res unsafe.Pointer) string
	// queryWithParams is chdb_query_with_params, which binds {name:Type}
	// placeholders to values passed beside the statement; nil in a
	// library that predates it.
	queryWithParams func(conn unsafe.Pointer, query, format string, names, values **byte, count uintptr) unsafe.Pointer
}

// loadLibrary loads libchdb once per process. Callers hold engine.mu.
func loadLibrary(path string) (*library, error) {
	if engine.lib != nil {
		if path != engine.libPath {
			return nil, fmt.Errorf("%w: %s is loaded already, cannot also load %s", ErrLibrary, engine.libPath, path)
		}
		return engine.lib, nil
	}
	handle, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w from %s: %w", ErrLibrary, path, err)
	}
	lib := &library{}
	for _, f := range []struct {
		name string
		fptr any
	}{
		{"chdb_connect", &lib.connect},
		{"chdb_close_conn", &lib.closeConn},
		{"chdb_query", &lib.query},
		{"chdb_destroy_query_result", &lib.destroy},
		{"chdb_result_buffer", &lib.buffer},
		{"chdb_result_length", &lib.length},
		{"chdb_result_error", &lib.errorString},
	} {
		sym, err := purego.Dlsym(handle, f.name)
		if err != nil {
			return nil, fmt.Errorf("%w from %s: %w", ErrLibrary, path, err)
		}
		purego.RegisterFunc(f.fptr, sym)
	}
	if sym, err := purego.Dlsym(handle, "chdb_query_with_params"); err == nil {
		purego.RegisterFunc(&lib.queryWithParams, sym)
	}
	engine.lib, engine.libPath = lib, path
	return lib, nil
}

// sharedConn is the process's connection to one data directory, shared
// by every Store open on it and closed with the last of them.
type sharedConn struct {
	lib    *library
	path   string
	thread *engineThread  // engine.thread
	handle unsafe.Pointer // chdb_connection *, for chdb_close_conn
	conn   unsafe.Pointer // chdb_connection, for chdb_query
	refs   int            // guarded by engine.mu

	// mu serializes statements: the engine runs one at a time anyway, and
	// waiting here keeps goroutines, not OS threads, waiting.
	mu     sync.Mutex
	closed bool
}

// acquire returns the connection to dir, connecting if this process has
// none yet, with the engine's priority lowered by nice (see Config.Nice;
// the process's first connection sets it for good).
func acquire(libPath, dir string, nice int) (*sharedConn, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("chdbstore: data directory %s: %w", dir, err)
	}
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if c, ok := engine.conns[abs]; ok {
		c.refs++
		return c, nil
	}
	if len(engine.conns) > 0 {
		var open []string
		for other := range engine.conns {
			open = append(open, other)
		}
		return nil, fmt.Errorf("%w (%s; asked for %s)", ErrBusy, strings.Join(open, ", "), abs)
	}
	lib, err := loadLibrary(libPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("chdbstore: creating data directory: %w", err)
	}
	if err := checkUnlocked(abs); err != nil {
		return nil, err
	}
	args := []string{"clickhouse", "--path=" + abs}
	argv := make([]*byte, len(args)+1) // NULL-terminated, as main's argv
	for i, a := range args {
		b := append([]byte(a), 0)
		argv[i] = &b[0]
	}
	if !engine.threadStarted {
		if nice == 0 {
			nice = DefaultNice
		}
		t, err := startEngineThread(nice)
		if err != nil {
			return nil, err
		}
		engine.thread, engine.threadStarted = t, true
	}
	thread := engine.thread
	var handle unsafe.Pointer
	thread.do(func() { handle = lib.connect(int32(len(args)), &argv[0]) })
	runtime.KeepAlive(argv)
	if handle == nil {
		return nil, fmt.Errorf("chdbstore: chDB could not open %s (its reason is on stderr)", abs)
	}
	conn := *(*unsafe.Pointer)(handle)
	closeConn := func() { thread.do(func() { lib.closeConn(handle) }) }
	if conn == nil {
		closeConn()
		return nil, fmt.Errorf("chdbstore: chDB could not open %s (its reason is on stderr)", abs)
	}
	// The first connection of the process to the directory: no statement
	// is running, so any insert file here was left by a crash.
	inserts := filepath.Join(abs, insertDir)
	if err := errors.Join(os.RemoveAll(inserts), os.Mkdir(inserts, 0o700)); err != nil {
		closeConn()
		return nil, fmt.Errorf("chdbstore: preparing %s: %w", inserts, err)
	}
	c := &sharedConn{lib: lib, path: abs, thread: thread, handle: handle, conn: conn, refs: 1}
	if engine.conns == nil {
		engine.conns = make(map[string]*sharedConn)
	}
	engine.conns[abs] = c
	return c, nil
}

// checkUnlocked reports ErrLocked when another process runs chDB (or a
// ClickHouse server) on dir. The engine takes an exclusive flock on its
// status file for as long as it has the directory open; chDB only prints
// its complaint to stderr, so look first to return a useful error.
func checkUnlocked(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "status"), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("chdbstore: checking %s: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return fmt.Errorf("chdbstore: checking the lock on %s: %w", dir, err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return nil
}

// release drops one reference and closes the connection with the last.
func (c *sharedConn) release() {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	c.refs--
	if c.refs > 0 {
		return
	}
	delete(engine.conns, c.path)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.thread.do(func() { c.lib.closeConn(c.handle) })
}

// QueryError is an error the engine reported for a statement.
type QueryError struct {
	Message string
}

func (e *QueryError) Error() string { return "chDB: " + e.Message }

// exec runs one statement (or several separated by semicolons) and returns
// its output in the given format.
func (c *sharedConn) exec(sql, format string) ([]byte, error) {
	return c.execParams(sql, format, nil, nil)
}

// errNoParams: the library cannot bind parameters.
var errNoParams = errors.New("chdbstore: this libchdb has no chdb_query_with_params (chDB 26.7 or later binds query parameters)")

// execParams runs one statement whose {name:String} placeholders the
// engine binds to values (the two slices pair up), after parsing it: a
// value is never part of the statement. Values are read as TabSeparated
// fields, so they go escaped (appendTSVString).
func (c *sharedConn) execParams(sql, format string, names, values []string) (out []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("chdbstore: connection closed")
	}
	c.thread.do(func() { out, err = c.run(sql, format, names, values) })
	return out, err
}

// run makes the calls of execParams; on the engine thread.
func (c *sharedConn) run(sql, format string, names, values []string) ([]byte, error) {
	var res unsafe.Pointer
	if len(names) == 0 {
		res = c.lib.query(c.conn, sql, format)
	} else {
		if c.lib.queryWithParams == nil {
			return nil, errNoParams
		}
		cstrings := func(ss []string, escape bool) []*byte {
			out := make([]*byte, len(ss))
			for i, s := range ss {
				var b []byte
				if escape {
					b = appendTSVString(nil, s)
				} else {
					b = []byte(s)
				}
				b = append(b, 0)
				out[i] = &b[0]
			}
			return out
		}
		cn, cv := cstrings(names, false), cstrings(values, true)
		res = c.lib.queryWithParams(c.conn, sql, format, &cn[0], &cv[0], uintptr(len(cn)))
		runtime.KeepAlive(cn)
		runtime.KeepAlive(cv)
	}
	if res == nil {
		return nil, nil
	}
	defer c.lib.destroy(res)
	if msg := c.lib.errorString(res); msg != "" {
		return nil, &QueryError{Message: msg}
	}
	n := c.lib.length(res)
	p := c.lib.buffer(res)
	if n == 0 || p == nil {
		return nil, nil
	}
	return append([]byte(nil), unsafe.Slice(p, n)...), nil
}

// Conn is a plain connection to chDB on a data directory: libchdb's own
// calls with nothing of the Store around them, to measure a Store against
// (the local bench's raw insert). It shares the process's one connection
// to the directory with any Store on it, and the rule that a process has
// one directory open at a time.
type Conn struct{ c *sharedConn }

// OpenConn connects to chDB on dir, loading libchdb from libPath, with the
// engine's priority lowered by nice as Config.Nice says (the process's
// first connection sets it).
func OpenConn(libPath, dir string, nice int) (*Conn, error) {
	c, err := acquire(libPath, dir, nice)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c}, nil
}

// Exec runs one statement (or several separated by semicolons) and
// returns its output in format; an error the engine reports is a
// *QueryError.
func (c *Conn) Exec(sql, format string) ([]byte, error) { return c.c.exec(sql, format) }

// Close drops the connection; the directory closes with its last user.
func (c *Conn) Close() { c.c.release() }
