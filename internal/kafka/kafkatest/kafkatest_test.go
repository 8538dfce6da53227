package kafkatest_test

import (
	"strconv"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/revoked-dev/revoked/internal/kafka/kafkatest"
)

func TestClusterHelpers(t *testing.T) {
	c := kafkatest.New(t, "a", "b")
	if got := c.Partitions(t, "a"); len(got) != 1 {
		t.Fatalf("partitions of a = %v", got)
	}
	c.CreateTopic(t, "wide", 3)
	if got := c.Partitions(t, "wide"); len(got) != 3 {
		t.Fatalf("partitions of wide = %v", got)
	}
	if got := c.Records(t, "a"); len(got) != 0 {
		t.Fatalf("empty topic holds %d", len(got))
	}
	for p := range 3 {
		c.ProduceTo(t, "wide", p, kafka.Message{Value: []byte(strconv.Itoa(p))}, kafka.Message{Value: []byte(strconv.Itoa(p))})
	}
	got := c.WaitRecords(t, "wide", 6)
	for i, m := range got {
		if m.Partition != i/2 || string(m.Value) != strconv.Itoa(i/2) || m.Offset != int64(i%2) {
			t.Fatalf("record %d = partition %d offset %d value %s", i, m.Partition, m.Offset, m.Value)
		}
	}
	c.Produce(t, "b", kafka.Message{Key: []byte("k"), Value: []byte("v")})
	if got := c.Records(t, "b"); len(got) != 1 || string(got[0].Value) != "v" {
		t.Fatalf("records of b = %v", got)
	}
	if got := c.Committed(t, "nobody", "b"); len(got) != 0 {
		t.Fatalf("committed by an unknown group = %v", got)
	}
}
