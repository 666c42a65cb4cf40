package settings

import (
	"fmt"
	"io"
)

// ListRequested reports whether args ask for the list of settings:
// -list-settings (or --list-settings) alone.
func ListRequested(args []string) bool {
	return len(args) == 1 && (args[0] == "-list-settings" || args[0] == "--list-settings")
}

// Names returns the environment variables load reads, in the order it
// first reads them: load, run on an empty environment, gets a getenv that
// records every name it is asked for (flags set nothing, so every
// setting's variable is asked for). load runs the binary's loader on no
// arguments; its error is returned.
func Names(load func(getenv func(string) string) error) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	record := func(name string) string {
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
		return ""
	}
	if err := load(record); err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	return names, nil
}

// WriteNames writes names one per line, as -list-settings prints them.
func WriteNames(w io.Writer, names []string) error {
	for _, n := range names {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}
