//go:build !amd64 && !arm64

package session

// kernelOLargefile: not decoded on architectures the BPF objects are not
// built for; the bit, if set, is printed in hex.
const kernelOLargefile = 0
