package session

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/agentwatch/agentwatch/receiver/agentsessionreceiver/internal/proctree"
)

// ReadBootID returns the kernel's boot id (a UUID that changes at every
// boot), the part of a session id that keeps ids unique across reboots,
// where pids and start times repeat.
func ReadBootID(procRoot string) (string, error) {
	b, err := os.ReadFile(procRoot + "/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("empty boot_id")
	}
	return id, nil
}

// SessionID derives a session's trace id from the boot id and its root
// process, so that a collector restarted during the session finds the
// root in /proc and carries on with the same id. It uses tick precision
// because that is all /proc offers.
func SessionID(bootID string, root proctree.Key) pcommon.TraceID {
	var buf [12]byte
	binary.LittleEndian.PutUint32(buf[0:], root.PID)
	binary.LittleEndian.PutUint64(buf[4:], root.Start)
	h := sha256.New()
	h.Write([]byte("agentwatch session\x00"))
	h.Write([]byte(bootID))
	h.Write([]byte{0})
	h.Write(buf[:])
	var id pcommon.TraceID
	copy(id[:], h.Sum(nil))
	if id.IsEmpty() {
		id[15] = 1 // the all-zero trace id is invalid
	}
	return id
}

// spanID derives the span id of one process image: the process (pid and
// start ticks) and the image's sequence number within it. pid 0 (never a
// user process) names the session's root span.
func spanID(trace pcommon.TraceID, pid uint32, start uint64, seq uint32) pcommon.SpanID {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, b := range trace {
		h = (h ^ uint64(b)) * prime
	}
	h = mix64(h ^ (uint64(pid)<<32 | uint64(seq)))
	h = mix64(h ^ start)
	if h == 0 {
		h = 1 // the all-zero span id is invalid
	}
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], h)
	return id
}

// mix64 is the splitmix64 finalizer: every input bit flips about half the
// output bits, so ids of neighbouring pids look unrelated.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func rootSpanID(trace pcommon.TraceID) pcommon.SpanID { return spanID(trace, 0, 0, 0) }
