package service

// ReplayPartitionsSeen returns how many partitions the replay index has
// seen a command of: each command's replay check tells it its partition.
func (s *Service) ReplayPartitionsSeen() int {
	s.replay.mu.Lock()
	defer s.replay.mu.Unlock()
	return len(s.replay.parts)
}
