package netns

import (
	"fmt"
	"os"
	"runtime"
)

// Thread is one OS thread that stays in a network namespace and runs the
// functions it is given there, whichever namespace the callers' threads are
// in. It suits code that keeps creating sockets in one namespace while the
// process drives several (a test or harness working in many at once).
type Thread struct {
	calls chan func()
}

// NewThread starts a thread in the namespace at path; Current pins it to the
// namespace the calling thread is in now. Stop ends it.
func NewThread(path string) (*Thread, error) {
	ns, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	t := &Thread{calls: make(chan func())}
	started := make(chan error)
	go func() {
		// Never unlocked: when the goroutine ends, the runtime ends the
		// thread instead of reusing one switched to another namespace.
		runtime.LockOSThread()
		err := setns(ns)
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
		return nil, fmt.Errorf("binding a thread to network namespace %s: %w", path, err)
	}
	return t, nil
}

// Run calls fn on the thread and waits for it to return.
func (t *Thread) Run(fn func()) {
	done := make(chan struct{})
	t.calls <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// Stop ends the thread; Run must not be called afterwards.
func (t *Thread) Stop() { close(t.calls) }
