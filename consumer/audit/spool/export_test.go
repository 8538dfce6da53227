package spool

// Abandon stops the spool as a crash would: no last drain, the store left
// open, the file's lock released.
func (s *Store) Abandon() { s.abandon() }

// StopDrainerForTest stops the drainer, leaving the spool as it is.
func (s *Store) StopDrainerForTest() {
	s.cancel()
	<-s.done
}

// MarkUpForTest makes the spool take the store for up.
func (s *Store) MarkUpForTest() { s.healthy.Store(true) }
