//go:build !linux

package agentconsoleexporter

import "os"

// The receiver only runs on Linux; elsewhere the exporter still works on
// OTLP input, with a cruder terminal check and numeric errno/signal values.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func errnoName(int64) string { return "" }

func signalName(int64) string { return "" }
