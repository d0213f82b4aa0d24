package httpstream

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// zstdMaxWindow is the largest zstd window the HTTP coding may use.
const zstdMaxWindow = 8 << 20

// ErrUnsupportedEncoding is wrapped by Message.DecodeErr for a coding this
// package cannot decode; Body then holds the encoded bytes.
var ErrUnsupportedEncoding = errors.New("httpstream: unsupported content coding")

// decode undoes codings (listed in the order they were applied) with the
// output of every step capped at limit bytes. On an error it returns what
// was decoded so far (nil if nothing), so a body cut by the capture still
// yields its beginning.
func decode(codings []string, body []byte, limit int) (out []byte, truncated bool, err error) {
	out = body
	for i := len(codings) - 1; i >= 0; i-- {
		var step []byte
		var trunc bool
		step, trunc, err = decodeOne(codings[i], out, limit)
		if err != nil && errors.Is(err, ErrUnsupportedEncoding) {
			if i == len(codings)-1 {
				return nil, false, err
			}
			return out, truncated, err
		}
		out = step
		truncated = truncated || trunc
		if err != nil {
			return out, truncated, err
		}
	}
	return out, truncated, nil
}

func decodeOne(coding string, in []byte, limit int) ([]byte, bool, error) {
	var r io.Reader
	switch coding {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, false, fmt.Errorf("gzip: %w", err)
		}
		r = zr
	case "deflate":
		// "deflate" means zlib-wrapped (RFC 9110 §8.4.1.2), but some
		// servers send raw deflate; accept both.
		zr, err := zlib.NewReader(bytes.NewReader(in))
		if err != nil {
			r = flate.NewReader(bytes.NewReader(in))
		} else {
			r = zr
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(in))
	case "zstd":
		// Synchronous decoding (no goroutines), window bounded by the 8 MB
		// that RFC 9659 allows the HTTP "zstd" coding: a frame asking for
		// more is refused rather than given the memory.
		zr, err := zstd.NewReader(bytes.NewReader(in),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(zstdMaxWindow),
			zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, false, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	default:
		return nil, false, fmt.Errorf("%w %q", ErrUnsupportedEncoding, coding)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if len(out) > limit {
		return out[:limit], true, nil
	}
	if err != nil {
		return out, false, fmt.Errorf("%s: %w", coding, err)
	}
	return out, false, nil
}
