// Package settings declares configuration settings once (flag, environment
// variable, default, usage, parsing and validation) and binds them to a
// flag set, so that every binary reads a setting the same way.
//
// A value comes from the flag when it is on the command line, else from
// the environment variable, else from the default: flags beat the
// environment, which beats defaults. An empty value counts as no value,
// wherever it comes from: an empty variable is unset, and an empty flag
// (-name=) beats the variable and gives the default. A value that does
// not parse is an *Error naming the flag, the variable and what was
// wanted; secrets are never quoted in it.
//
// -list-settings (ListRequested, Names, WriteNames) prints the variables a
// binary reads: its loader, run with a getenv that records every name it
// is asked for, so that the list cannot drift from the loader.
package settings

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Info describes a setting to a Set: where its value comes from, and how
// -h and errors show it.
type Info struct {
	// Flag is the flag's name, without the dash.
	Flag string
	// Env is the environment variable.
	Env string
	// Usage is the one-line description -h prints.
	Usage string
	// Default is the default as text ("" shows none).
	Default string
	// Arg names the value in -h ("string", "duration", "host:port", ...).
	Arg string
	// Secret keeps the value out of errors.
	Secret bool
}

// Decl is a declared setting whose value has type T: String, Int,
// Duration, Bool, Enum, URL, List, HostPort and Custom are the kinds.
type Decl[T any] interface {
	// Info describes the setting.
	Info() Info
	// Parse parses and validates a value; "" is the default. Its error
	// says what is wanted, without repeating the value.
	Parse(value string) (T, error)
}

// Error is a value a setting refused.
type Error struct {
	Flag, Env string
	// Value is the value refused; empty for a secret.
	Value string
	// Err says what was wanted.
	Err error
}

func (e *Error) Error() string {
	v := ""
	if e.Value != "" {
		v = fmt.Sprintf(" %q", e.Value)
	}
	return fmt.Sprintf("invalid -%s (%s)%s: %v", e.Flag, e.Env, v, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// HelpError is Set.Parse's answer to -h: Usage lists every flag with its
// variable.
type HelpError struct{ Usage string }

func (e *HelpError) Error() string { return e.Usage }

// Unwrap makes errors.Is(err, flag.ErrHelp) true.
func (e *HelpError) Unwrap() error { return flag.ErrHelp }

// Set is the settings of one binary, bound to its flags.
type Set struct {
	name     string
	fs       *flag.FlagSet
	bindings []binding
}

// binding is one bound setting.
type binding struct {
	info  Info
	flag  *rawFlag
	store func(value string) error
}

// rawFlag records a flag's text; parsing waits until the environment is
// known.
type rawFlag struct {
	value string
	set   bool
}

func (f *rawFlag) String() string { return f.value }

func (f *rawFlag) Set(s string) error {
	f.value, f.set = s, true
	return nil
}

// NewSet returns an empty Set for the binary name (as -h shows it).
func NewSet(name string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Set{name: name, fs: fs}
}

// Bind adds the setting d to s; Parse stores its value in dst. A flag
// declared twice panics, as with the flag package.
func Bind[T any](s *Set, dst *T, d Decl[T]) {
	info := d.Info()
	b := binding{info: info, flag: &rawFlag{value: info.Default}}
	s.fs.Var(b.flag, info.Flag, info.Usage)
	b.store = func(value string) error {
		v, err := d.Parse(value)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
	s.bindings = append(s.bindings, b)
}

// Parse parses args (without the program name), then gives every bound
// setting its value: the flag's, else getenv's (asked only when the flag
// is not on the command line), else the default. -h returns a *HelpError; a flag the
// set does not know or a positional argument is an error; every refused
// value is an *Error, joined.
func (s *Set) Parse(args []string, getenv func(string) string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &HelpError{Usage: s.Usage()}
		}
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", s.fs.Arg(0))
	}
	var errs []error
	for _, b := range s.bindings {
		value := b.flag.value
		if !b.flag.set {
			value = getenv(b.info.Env)
		}
		if err := b.store(value); err != nil {
			e := &Error{Flag: b.info.Flag, Env: b.info.Env, Err: err}
			if !b.info.Secret {
				e.Value = value
			}
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// Usage lists the flags, by name, each with its variable and default.
func (s *Set) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage of %s:\n", s.name)
	sorted := slices.SortedFunc(slices.Values(s.bindings), func(x, y binding) int {
		return strings.Compare(x.info.Flag, y.info.Flag)
	})
	for _, bd := range sorted {
		i := bd.info
		fmt.Fprintf(&b, "  -%s %s\n    \t%s ($%s)", i.Flag, i.Arg, i.Usage, i.Env)
		if i.Default != "" && !i.Secret {
			fmt.Fprintf(&b, " (default %q)", i.Default)
		}
		b.WriteString("\n")
	}
	return b.String()
}
