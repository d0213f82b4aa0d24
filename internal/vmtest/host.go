package vmtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// HostBusybox is where Debian's busybox-static installs its binary.
const HostBusybox = "/bin/busybox"

// EnsureHostTools installs QEMU and a static busybox with apt when they
// are missing: the CI machine starts with only Go, gcc and git, and the
// project's own files must install what it needs. Without root it only
// says what to install.
func EnsureHostTools(ctx context.Context, logw io.Writer) error {
	var need []string
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		need = append(need, "qemu-system-x86")
	}
	// The plain busybox package also installs /bin/busybox, dynamically
	// linked; the guest has no libc, so only busybox-static will do.
	if RequireStatic(HostBusybox) != nil {
		need = append(need, "busybox-static")
	}
	if len(need) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing host packages; install them with: sudo apt-get install %s", strings.Join(need, " "))
	}
	fmt.Fprintf(logw, "vmtest: installing %s\n", strings.Join(need, " "))
	install := append([]string{"install", "-y", "-q", "--no-install-recommends"}, need...)
	out, err := command(ctx, "", "apt-get", install...)
	if err != nil {
		// Most often stale or absent package lists (a fresh machine).
		fmt.Fprintf(logw, "vmtest: apt-get install failed; running apt-get update and retrying\n")
		if uout, uerr := command(ctx, "", "apt-get", "update", "-qq"); uerr != nil {
			return fmt.Errorf("apt-get update: %w\n%s", uerr, uout)
		}
		if out, err = command(ctx, "", "apt-get", install...); err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", strings.Join(need, " "), err, out)
		}
	}
	return nil
}
