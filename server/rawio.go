package server

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's system calls on non-blocking descriptors are made with
// RawSyscall, which skips the Go scheduler's entersyscall/exitsyscall.
// None of them can block (the sockets and the eventfd are O_NONBLOCK, and
// pollEvents has a zero timeout), so the scheduler loses nothing by not
// being told; the epoll_wait that blocks stays a plain syscall.
//
// Why: profiles of redis-benchmark -P 16 showed the runtime's monitor
// thread (sysmon) at 13% of the server's CPU, and exitsyscall in the
// loop's path: a P seen in a system call at a sysmon tick while the other
// P is busy is handed to another thread, and the loop's next exitsyscall
// pays to get one back. With raw calls (3 runs each, interleaved, on this
// 2-CPU VM) SETs went from 516k to 571k requests/s at 9% less server CPU
// per SET, and GETs from 759k to 805k.
//
// Tried and not kept: waiting for the loop's events in Go's poller
// instead (the epoll descriptor registered there, so that no syscall
// blocks at all). It halved sysmon's wakeups and gained another 4% on
// SETs, but lost 13% on GETs, where the loop is the only busy goroutine
// and each wait went through the scheduler.

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) { return rawIO(unix.SYS_READ, fd, p) }

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// pollEvents is epoll_wait(2) with a zero timeout: it returns the ready
// events without waiting. (epoll_pwait with no signal mask: arm64 and
// riscv64 have no epoll_wait.)
func pollEvents(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
