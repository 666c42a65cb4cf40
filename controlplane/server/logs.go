package server

import (
	"context"
	"log/slog"

	"luthien.dev/controlplane/internal/store"
)

// RedactLogs wraps a log handler so that credentials found in a record's
// message or in its attributes (strings, errors, anything printed as
// text) are replaced before they are written, with the same table of
// credential forms the recorded calls go through. Both binaries log
// through it.
func RedactLogs(h slog.Handler) slog.Handler { return redactingHandler{h} }

type redactingHandler struct{ next slog.Handler }

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, store.RedactString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return redactingHandler{h.next.WithAttrs(red)}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.next.WithGroup(name)}
}

// redactAttr redacts one attribute: a value logged under a credential's
// name entirely, text by its content, groups member by member.
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if store.IsSecretKey(a.Key) && v.String() != "" {
			return slog.String(a.Key, store.Redacted)
		}
		return slog.String(a.Key, store.RedactString(v.String()))
	case slog.KindGroup:
		group := v.Group()
		red := make([]any, len(group))
		for i, m := range group {
			red[i] = redactAttr(m)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, store.RedactString(err.Error()))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, store.RedactString(s.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
