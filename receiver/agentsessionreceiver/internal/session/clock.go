package session

import (
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"
)

// Clock converts the kernel's CLOCK_BOOTTIME timestamps to wall-clock time.
// The offset between the two moves when the wall clock is stepped (NTP,
// suspend does not move it: BOOTTIME counts suspend), so Refresh re-reads it.
type Clock struct {
	offset atomic.Int64 // wall ns - boottime ns
	fixed  bool
}

// NewClock measures the offset now.
func NewClock() *Clock {
	c := &Clock{}
	c.Refresh()
	return c
}

// FixedClock never changes its offset: for tests and replays.
func FixedClock(offsetNS int64) *Clock {
	c := &Clock{fixed: true}
	c.offset.Store(offsetNS)
	return c
}

// BootNow reads CLOCK_BOOTTIME in ns.
func BootNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

// Refresh re-measures the offset. The two clock reads are bracketed by
// wall-clock reads, and the midpoint is used, so a preemption between them
// costs at most half its length in accuracy.
func (c *Clock) Refresh() {
	if c.fixed {
		return
	}
	w1 := time.Now().UnixNano()
	b := int64(BootNow())
	w2 := time.Now().UnixNano()
	c.offset.Store(w1 + (w2-w1)/2 - b)
}

// Wall converts a CLOCK_BOOTTIME timestamp.
func (c *Clock) Wall(bootNS uint64) pcommon.Timestamp {
	return pcommon.Timestamp(int64(bootNS) + c.offset.Load())
}

// Boot converts a wall-clock time to CLOCK_BOOTTIME ns.
func (c *Clock) Boot(t time.Time) uint64 {
	b := t.UnixNano() - c.offset.Load()
	if b < 0 {
		return 0
	}
	return uint64(b)
}
