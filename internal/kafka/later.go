package kafka

// MaxLater is how many messages the Reader lets be handled and not yet
// durable (see Later) at once: laterPerHandler per handler slot. A sink
// that group-commits what those messages wait on (an audit writer, say)
// must flush once it holds that many, or the Reader stops handing out
// messages while the sink waits for more.
func (c ReaderConfig) MaxLater() int { return laterPerHandler * c.Concurrency }
