package session

// kernelOLargefile: see largefile_amd64.go.
const kernelOLargefile = 0x20000
