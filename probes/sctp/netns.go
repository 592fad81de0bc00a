package sctp

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsThread runs functions on one OS thread that stays in the network
// namespace its creator was in. The stack creates sockets and checks port
// claims through it, so a stack keeps working in its own namespace even when
// the process's other threads are elsewhere (tests and harnesses that drive
// several namespaces from one process).
type netnsThread struct {
	calls chan func()
}

// newNetnsThread binds a new thread to the calling thread's network namespace.
func newNetnsThread() (*netnsThread, error) {
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("opening the current network namespace: %w", err)
	}
	t := &netnsThread{calls: make(chan func())}
	started := make(chan error)
	go func() {
		// Never unlocked: when the goroutine ends, the runtime ends the
		// thread instead of reusing one switched to another namespace.
		runtime.LockOSThread()
		err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET)
		ns.Close()
		started <- err
		if err != nil {
			return
		}
		for fn := range t.calls {
			fn()
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("binding a thread to the network namespace: %w", err)
	}
	return t, nil
}

// run calls fn on the bound thread and waits for it.
func (t *netnsThread) run(fn func()) {
	done := make(chan struct{})
	t.calls <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// stop ends the thread; run must not be called afterwards.
func (t *netnsThread) stop() { close(t.calls) }
