package service

// detectStep runs the event through the rule engine, which updates the
// partition's state and returns the commands the event completed; an
// event that completes none is settled here.
func (s *Service) detectStep(f *flight, next next) error {
	f.cmds = s.process(f.msg.Partition, &f.ev)
	s.metrics.events.WithLabelValues(resultProcessed).Inc()
	if e := s.log.Debug(); e.Enabled() {
		e.Str("event_id", f.ev.ID).Str("type", string(f.ev.Type)).Int("partition", f.msg.Partition).Int64("offset", f.msg.Offset).
			Int("commands", len(f.cmds)).Msg("event processed")
	}
	if len(f.cmds) == 0 {
		return nil
	}
	return next(f)
}
