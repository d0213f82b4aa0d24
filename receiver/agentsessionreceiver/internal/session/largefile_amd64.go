package session

// kernelOLargefile is the kernel's O_LARGEFILE. x/sys/unix defines it as 0
// on 64-bit targets (libc does not need it there), but the kernel sets it
// in f_flags of every file a 64-bit process opens, so LSM hooks see it.
const kernelOLargefile = 0x8000
