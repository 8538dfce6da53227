package kafka

import "time"

// FetchWaits tells what a kafka-go reader (v0.4.51) makes of maxWait
// (ReaderConfig.MaxWait): how long it asks the broker to hold a fetch that
// has less than MinBytes to return, and how late after that the broker may
// answer before the reader gives up on the connection.
//
// kafka-go's reader.read sets the connection's read deadline to exactly
// maxWait after it sends the fetch. Conn.ReadBatchWith, given no MaxWait
// of its own (the reader passes none), takes that deadline through
// adjustDeadlineForRTT with a one-second round trip allowance: below one
// second it keeps a quarter of maxWait back, from one second up the whole
// second. So the broker is asked to hold the fetch for 3/4 of maxWait
// (maxWait minus one second from one second up) and has the rest, the
// slack, to deliver its answer. An answer later than that fails the read
// with "i/o timeout": the reader logs it, closes the connection, backs off
// at least 100 ms and dials the partition's leader again.
//
// A busy broker answers late: kfake starts the hold when its single
// request loop gets to the fetch, not when the fetch arrived, and queues
// the answer behind the other requests when the hold ends. Real brokers
// are late under load and over a network too. Hence a maxWait whose slack
// comfortably exceeds such delays, and never one in [1s, 1.1s), which
// asks for a hold of (nearly) nothing and turns an idle reader into a busy
// poll.
func FetchWaits(maxWait time.Duration) (hold, slack time.Duration) {
	// kafka-go's defaultRTT.
	const rtt = time.Second
	slack = rtt
	if maxWait < rtt {
		slack = maxWait / 4
	}
	// The broker is told whole milliseconds, rounded down.
	hold = (maxWait - slack).Truncate(time.Millisecond)
	return hold, maxWait - hold
}

// minFetchHold is the shortest hold Validate accepts from a MaxWait of one
// second or more, where kafka-go's hold is MaxWait minus one second.
const minFetchHold = 100 * time.Millisecond
