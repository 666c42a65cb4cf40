package server

import (
	"fmt"
	"io"
	"log/slog"
)

// Log formats (LUTHIEN_LOG_FORMAT).
const (
	// LogText is slog's key=value lines, the default.
	LogText = "text"
	// LogJSON is one JSON object per line.
	LogJSON = "json"
)

// CheckLogFormat checks a LUTHIEN_LOG_FORMAT value; empty is LogText.
func CheckLogFormat(format string) error {
	switch format {
	case "", LogText, LogJSON:
		return nil
	}
	return fmt.Errorf("log format %q: want %s or %s", format, LogText, LogJSON)
}

// NewLogHandler returns the log handler of a binary: lines in format
// (LogText when empty) written to w from level on, with credentials
// redacted (RedactLogs) whatever the format.
func NewLogHandler(format string, w io.Writer, level slog.Leveler) (slog.Handler, error) {
	if err := CheckLogFormat(format); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == LogJSON {
		return RedactLogs(slog.NewJSONHandler(w, opts)), nil
	}
	return RedactLogs(slog.NewTextHandler(w, opts)), nil
}
