package server

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type stringer string

func (s stringer) String() string { return string(s) }

// Credentials reach no log line, wherever they sit in the record: the
// message, string and error attributes, groups, attributes added with
// With, values logged under a credential's name.
func TestRedactLogs(t *testing.T) {
	const (
		aws = "AKIA" + "IOSFODNN7EXAMPLE"
		gh  = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
		jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
		ant = "sk-" + "ant-api03-Zx8Qw1Lm5Rt7Yp3Nc6Vb9Gh2Jk4Df0Sa"
		pw  = "hunter2-but-longer"
	)
	for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(RedactLogs(newHandler(&buf))).With("upstream_key", ant)
		log.Info("calling with "+aws, "body", "token "+gh, "err", errors.New("judge said: bad "+jwt),
			slog.Group("req", "password", pw, "note", stringer("uses "+aws)), "count", 3)
		log.WithGroup("g").Warn("plain", "x", "ok")
		out := buf.String()
		for _, secret := range []string{aws, gh, jwt, ant, pw} {
			if strings.Contains(out, secret) {
				t.Errorf("%.12s… is in the log:\n%s", secret, out)
			}
		}
		for _, kept := range []string{"calling with", "[redacted:aws-access-key]", "judge said: bad", "count", "plain"} {
			if !strings.Contains(out, kept) {
				t.Errorf("the log lost %q:\n%s", kept, out)
			}
		}
	}
}
