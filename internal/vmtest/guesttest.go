package vmtest

import (
	"os"
	"testing"
)

// InGuest reports whether this process runs under the vmtest guest init.
func InGuest() bool { return os.Getenv(InVMEnv) == "1" }

// RequireGuest fails a test that only makes sense in the vmtest guest.
// Such tests carry the `vmtest` build tag, so the host's `go test ./...`
// never builds them; reaching this outside the guest means someone built
// them with -tags vmtest on a host, where BPF LSM does not load, and a
// skip would hide that.
func RequireGuest(tb testing.TB) {
	tb.Helper()
	if !InGuest() {
		tb.Fatalf("this test runs in the QEMU guest only (make test-vm); %s=1 is not set", InVMEnv)
	}
}
