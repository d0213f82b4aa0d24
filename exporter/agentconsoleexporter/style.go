package agentconsoleexporter

import (
	"hash/fnv"

	"github.com/agentwatch/agentwatch/internal/semconv"
)

// SGR sequences. Plain 16-colour codes: they follow the user's terminal
// theme and work everywhere.
const (
	sgrReset    = "\x1b[0m"
	sgrBold     = "\x1b[1m"
	sgrDim      = "\x1b[2m"
	sgrRed      = "\x1b[31m"
	sgrGreen    = "\x1b[32m"
	sgrYellow   = "\x1b[33m"
	sgrBlue     = "\x1b[34m"
	sgrMagenta  = "\x1b[35m"
	sgrCyan     = "\x1b[36m"
	sgrBoldRed  = "\x1b[1;31m"
	sgrCritical = "\x1b[1;97;41m" // bold white on red: must not be missed
)

// Session tags get a colour from their id so that interleaved sessions can
// be told apart at a glance; the same session keeps its colour.
var sessionPalette = []string{sgrCyan, sgrMagenta, sgrYellow, sgrGreen, sgrBlue, "\x1b[96m", "\x1b[95m", "\x1b[93m"}

func sessionColor(id string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return sessionPalette[h.Sum32()%uint32(len(sessionPalette))]
}

var tagColors = map[string]string{
	tagStart:   sgrBold,
	tagEnd:     sgrBold,
	tagExec:    sgrGreen,
	tagExit:    sgrDim,
	tagOpen:    sgrBlue,
	tagConnect: sgrMagenta,
	tagDNS:     sgrCyan,
	tagLLM:     sgrYellow,
	tagSpan:    sgrDim,
	tagEnforce: sgrBoldRed,
}

func levelColor(level string) string {
	switch level {
	case semconv.LevelCritical:
		return sgrCritical
	case semconv.LevelHigh:
		return sgrBoldRed
	case semconv.LevelMedium:
		return sgrYellow
	case semconv.LevelLow:
		return sgrCyan
	}
	return sgrDim
}

// paint wraps s in an SGR sequence when colour is on.
func (r *renderer) paint(s, sgr string) string {
	if !r.color || sgr == "" || s == "" {
		return s
	}
	return sgr + s + sgrReset
}
