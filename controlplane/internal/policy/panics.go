package policy

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// panicError is a panic recovered in a policy's code and turned into the
// error of the call it served: a hook or a judge that panics fails like one
// that returns an error (failing closed, or passed over under on_error:
// pass), and a panic on a goroutine of a policy's own does not end the
// process.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("policy panicked: %v", e.value) }

// LogValue logs the panic with the stack where it happened.
func (e *panicError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("message", e.Error()), slog.String("stack", string(e.stack)))
}

// catch runs f, returning a panic in it as a *panicError.
func catch[T any](f func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return f()
}
