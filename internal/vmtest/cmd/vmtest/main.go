// Command vmtest runs Go tests inside a QEMU guest booting Debian's cloud
// kernel, where BPF LSM programs load (they do not on the CI host).
//
//	vmtest kernel            fetch (or reuse) the cached guest kernel; print its paths
//	vmtest run -pkg PKG      build PKG's tests (static, -tags vmtest), boot, run them
//
// `make test-vm` calls `vmtest run`; see vm.mk. The exit status is the
// guest test binary's, or 1 if the guest never reported one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agentwatch/agentwatch/internal/vmtest"
)

const guestInitPkg = "github.com/agentwatch/agentwatch/internal/vmtest/guestinit"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		usage()
	}
	var code int
	var err error
	switch os.Args[1] {
	case "kernel":
		err = kernelCmd(ctx, os.Args[2:])
	case "run":
		code, err = runCmd(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: FAIL: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: vmtest kernel [-cache DIR]\n       vmtest run [flags] [-- test binary args]\n       (vmtest run -h lists the flags)\n")
	os.Exit(2)
}

func cacheFlag(fs *flag.FlagSet) *string {
	def, _ := vmtest.DefaultCacheDir()
	return fs.String("cache", def, "kernel cache directory")
}

func kernelCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vmtest kernel", flag.ExitOnError)
	cache := cacheFlag(fs)
	_ = fs.Parse(args)
	k, err := vmtest.FetchKernel(ctx, *cache, os.Stderr)
	if err != nil {
		return err
	}
	lsm, err := k.LSMWithBPF()
	if err != nil {
		return err
	}
	fmt.Printf("package  %s %s\nrelease  %s\nboot     %s\nconfig   %s\nlsm      %s\n",
		k.Package, k.Version, k.Release, k.BootImage(), k.Config(), lsm)
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("vmtest run", flag.ExitOnError)
	cache := cacheFlag(fs)
	pkg := fs.String("pkg", "", "Go package whose tests run in the guest (built with go test -c)")
	bin := fs.String("bin", "", "a prebuilt static test binary to run instead of building -pkg")
	runPat := fs.String("run", "", "-test.run pattern for the guest test binary")
	tags := fs.String("tags", "vmtest", "build tags for the guest test binary")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on the whole boot; the test binary gets 90% of it as -test.timeout")
	mem := fs.Int("mem", 256, "guest memory in MiB")
	cpus := fs.Int("smp", 1, "guest vCPUs")
	appendArgs := fs.String("append", "", "extra kernel parameters")
	icount := fs.String("icount", "", "QEMU -icount value (e.g. shift=0): guest time counts emulated instructions, independent of the host's load")
	requireLSM := fs.Bool("require-bpf-lsm", true, "fail before running the tests if bpf is not an active LSM in the guest")
	keep := fs.Bool("keep", false, "keep the work directory (initramfs, binaries) and print its path")
	var files multiFlag
	fs.Var(&files, "file", "HOST[:GUEST] file or directory to copy into the guest (repeatable); dynamic executables bring their libraries")
	_ = fs.Parse(args)
	if (*pkg == "") == (*bin == "") {
		return 0, errors.New("give exactly one of -pkg or -bin")
	}
	total := time.Now()

	phase := time.Now()
	if err := vmtest.EnsureHostTools(ctx, os.Stderr); err != nil {
		return 0, err
	}
	k, err := vmtest.FetchKernel(ctx, *cache, os.Stderr)
	if err != nil {
		return 0, err
	}
	lsm, err := k.LSMWithBPF()
	if err != nil {
		return 0, err
	}
	logf("kernel %s (%s) ready in %s", k.Release, filepath.Base(k.BootImage()), since(phase))

	work, err := os.MkdirTemp("", "agentwatch-vmtest-")
	if err != nil {
		return 0, err
	}
	if *keep {
		logf("work directory %s (kept)", work)
	} else {
		defer os.RemoveAll(work)
	}

	phase = time.Now()
	initBin := filepath.Join(work, "init")
	if err := goCmd(ctx, "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, guestInitPkg); err != nil {
		return 0, fmt.Errorf("build the guest init: %w", err)
	}
	testBin, guestDir := *bin, "/"
	var extra []vmtest.File
	if *pkg != "" {
		testBin = filepath.Join(work, "test.bin")
		if err := goCmd(ctx, "test", "-c", "-trimpath", "-tags", *tags, "-o", testBin, *pkg); err != nil {
			return 0, fmt.Errorf("build the test binary of %s: %w", *pkg, err)
		}
		if guestDir, extra, err = packageLayout(ctx, *pkg); err != nil {
			return 0, err
		}
	}
	if err := vmtest.RequireStatic(testBin); err != nil {
		return 0, err
	}
	logf("guest init and test binary built in %s", since(phase))

	phase = time.Now()
	added, err := vmtest.HostFilesWithLibs(files)
	if err != nil {
		return 0, err
	}
	testArgs := []string{"/test.bin", "-test.v", "-test.count=1", "-test.timeout=" + (*timeout * 9 / 10).String()}
	if *runPat != "" {
		testArgs = append(testArgs, "-test.run="+*runPat)
	}
	testArgs = append(testArgs, fs.Args()...)
	initrd := filepath.Join(work, "initramfs.cpio")
	err = vmtest.BuildInitramfs(initrd, vmtest.InitramfsSpec{
		Init:    initBin,
		Busybox: vmtest.HostBusybox,
		Config: vmtest.GuestConfig{
			Args:          testArgs,
			Dir:           guestDir,
			RequireBPFLSM: *requireLSM,
		},
		Files: append(append([]vmtest.File{{Host: testBin, Guest: "/test.bin", Mode: 0o755}}, extra...), added...),
	})
	if err != nil {
		return 0, fmt.Errorf("build the initramfs: %w", err)
	}
	st, _ := os.Stat(initrd)
	logf("initramfs %d MiB built in %s; booting", st.Size()>>20, since(phase))

	vm := vmtest.VM{
		Kernel:    k.BootImage(),
		Initramfs: initrd,
		LSM:       lsm,
		MemoryMB:  *mem,
		CPUs:      *cpus,
		Icount:    *icount,
		Timeout:   *timeout,
		Console:   os.Stdout,
	}
	if *appendArgs != "" {
		vm.Append = strings.Fields(*appendArgs)
	}
	res, err := vm.Run(ctx)
	if err != nil {
		hint := ""
		if !*keep {
			hint = "\nvmtest: (-keep, or VM_FLAGS=-keep, keeps the initramfs to rerun this by hand)"
		}
		return 0, fmt.Errorf("%w\nvmtest: qemu %s%s", err, strings.Join(vm.Args(), " "), hint)
	}
	verdict := "PASS"
	if res.ExitCode != 0 {
		verdict = "FAIL"
	}
	logf("%s: guest exit status %d; VM %s, total %s", verdict, res.ExitCode, res.Elapsed.Round(10*time.Millisecond), since(total))
	return res.ExitCode, nil
}

// packageLayout mirrors what `go test` does for the test's working
// directory: the guest runs the binary in the package's directory (its
// module-relative path under /src), and the package's testdata comes along.
func packageLayout(ctx context.Context, pkg string) (guestDir string, files []vmtest.File, err error) {
	out, err := exec.CommandContext(ctx, goTool(), "list", "-f", "{{.Dir}}\n{{.Module.Dir}}", pkg).Output()
	if err != nil {
		return "", nil, fmt.Errorf("go list %s: %w", pkg, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return "", nil, fmt.Errorf("go list %s: want one package, got %q", pkg, out)
	}
	rel, err := filepath.Rel(lines[1], lines[0])
	if err != nil {
		return "", nil, err
	}
	guestDir = path.Join("/src", filepath.ToSlash(rel))
	td := filepath.Join(lines[0], "testdata")
	if st, err := os.Stat(td); err == nil && st.IsDir() {
		files, err = vmtest.HostFilesWithLibs([]string{td + ":" + path.Join(guestDir, "testdata")})
	}
	return guestDir, files, err
}

func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// goCmd runs the go tool with CGO_ENABLED=0: the guest has no libc.
func goCmd(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "vmtest: "+format+"\n", a...)
}

func since(t time.Time) time.Duration { return time.Since(t).Round(10 * time.Millisecond) }
