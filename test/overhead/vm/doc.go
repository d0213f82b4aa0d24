// Package vm is make bench-overhead-vm: the overhead bench's loops
// (test/overhead/internal/bench) in the QEMU guest (internal/vmtest), on
// the receiver's LSM backend, which loads only there. Its one test is
// guest-only (build tag vmtest); the vm.mk target builds the static loop
// program on the host and ships it into the guest with the runner's -file.
package vm
