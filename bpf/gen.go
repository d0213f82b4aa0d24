// Package bpf holds agentwatch's kernel programs (C, CO-RE against the
// committed vmlinux.h) and the Go objects bpf2go generates from them. The
// generated files are committed so `go build` needs no clang; `make generate`
// rebuilds them and CI checks that doing so gives no diff.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target amd64 -no-global-types Agentwatch agentwatch.bpf.c -- -I.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target amd64 -no-global-types LSMProbe lsmprobe.bpf.c -- -I.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wno-unused-function -D__TARGET_ARCH_x86" -target amd64 -no-global-types Intent intent.bpf.c -- -I.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wno-unused-function -D__TARGET_ARCH_x86" -target amd64 -no-global-types LSM lsm.bpf.c -- -I.
