package settings

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// parseCase is one value given to a kind: what it gives, or the error.
type parseCase struct {
	in      string
	want    any
	wantErr string
}

// parse adapts a Decl to the table.
func parse[T any](d Decl[T]) func(string) (any, error) {
	return func(s string) (any, error) { return d.Parse(s) }
}

func TestKinds(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.yaml")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		name  string
		parse func(string) (any, error)
		cases []parseCase
	}{
		{"string", parse(String{Default: "d"}), []parseCase{{"", "d", ""}, {" x ", " x ", ""}}},
		{"file", parse(String{Check: RegularFile}), []parseCase{{"", "", ""}, {file, file, ""},
			{dir, nil, "not a regular file"}, {filepath.Join(dir, "absent"), nil, "absent"}}},
		{"int", parse(Int{Default: 3, Min: 0, Max: 10, Unit: "days"}), []parseCase{{"", 3, ""}, {"0", 0, ""}, {" 10 ", 10, ""},
			{"11", nil, "want a whole number of days from 0 to 10"}, {"-1", nil, "from 0 to 10"}, {"1.5", nil, "whole number"}}},
		{"int without a maximum", parse(Int{Default: 5, Min: 1}), []parseCase{{"1", 1, ""}, {"1000000000", 1000000000, ""},
			{"0", nil, "want a whole number, 1 or more"}}},
		{"positive duration", parse(Duration{Default: 90 * time.Second}), []parseCase{{"", 90 * time.Second, ""},
			{"1h30m", 90 * time.Minute, ""}, {"0", nil, "want a positive duration such as 1m30s"}, {"-1s", nil, "positive"},
			{"60", nil, "positive duration"}}},
		{"duration or 0", parse(Duration{Default: time.Hour, Zero: true}), []parseCase{{"0", time.Duration(0), ""},
			{"0s", time.Duration(0), ""}, {"-1m", nil, "want a duration such as 1h, or 0"}}},
		{"bool", parse(Bool{}), []parseCase{{"", false, ""}, {"1", true, ""}, {"true", true, ""}, {"TRUE", true, ""},
			{"0", false, ""}, {"false", false, ""}, {"yes", nil, "want 1 or 0"}, {"on", nil, "want 1 or 0"}}},
		{"bool on by default", parse(Bool{Default: true}), []parseCase{{"", true, ""}, {"0", false, ""}}},
		{"enum", parse(Enum{Default: "text", Values: []string{"text", "json"}}), []parseCase{{"", "text", ""},
			{"JSON", "json", ""}, {" Text", "text", ""}, {"yaml", nil, "want text or json"}}},
		{"url", parse(URL{Schemes: []string{"http", "https"}, Host: true}), []parseCase{{"", "", ""},
			{"https://api.example.com/v1", "https://api.example.com/v1", ""}, {"HTTP://h", "HTTP://h", ""},
			{"ftp://x", nil, "want a http:// or https:// URL with a host"}, {"http:///path", nil, "with a host"},
			{"api.example.com", nil, "URL"}, {"http://[::1", nil, "URL"}}},
		{"url without host", parse(URL{Schemes: []string{"postgres", "postgresql"}}), []parseCase{
			{"postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql", ""},
			{"host=db user=x", nil, "want a postgres:// or postgresql:// URL"}}},
		{"list", parse(List{Default: "a,b"}), []parseCase{{"", []string{"a", "b"}, ""}, {" x ,, y,", []string{"x", "y"}, ""},
			{" , ", []string(nil), ""}}},
		{"checked list", parse(List{Check: func(s string) error {
			if strings.Contains(s, "/") {
				return os.ErrInvalid
			}
			return nil
		}}), []parseCase{{"a,b/c", nil, `"b/c": invalid argument`}}},
		{"host:port", parse(HostPort{Default: "127.0.0.1:8000"}), []parseCase{{"", "127.0.0.1:8000", ""},
			{":9000", ":9000", ""}, {"[::1]:0", "[::1]:0", ""}, {"localhost", nil, "want host:port"},
			{"localhost:http", nil, `port "http" is not a number from 0 to 65535`}, {"h:65536", nil, "not a number"}}},
		{"host:port off by default", parse(HostPort{}), []parseCase{{"", "", ""}}},
		{"custom", parse(Custom[int]{Default: "two", Func: func(s string) (int, error) {
			return map[string]int{"one": 1, "two": 2}[s], nil
		}}), []parseCase{{"", 2, ""}, {"one", 1, ""}}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for _, c := range k.cases {
				got, err := k.parse(c.in)
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Errorf("%q: got %v, %v; want an error saying %q", c.in, got, err, c.wantErr)
					}
					continue
				}
				if err != nil || !reflect.DeepEqual(got, c.want) {
					t.Errorf("%q: got %#v, %v; want %#v", c.in, got, err, c.want)
				}
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 2 * time.Minute: "2m", 90 * time.Minute: "1h30m",
		60 * time.Second: "1m", 15 * time.Second: "15s", time.Hour + 5*time.Second: "1h0m5s", 0: "0s", 12 * time.Hour: "12h"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestDefaultsShown checks the defaults -h shows.
func TestDefaultsShown(t *testing.T) {
	for _, tt := range []struct {
		info Info
		want string
	}{
		{Int{Default: 10000}.Info(), "10000"},
		{Duration{Default: time.Hour}.Info(), "1h"},
		{Bool{}.Info(), ""},
		{Bool{Default: true}.Info(), "1"},
		{Enum{Default: "text"}.Info(), "text"},
		{Custom[int]{Default: "info"}.Info(), "info"},
	} {
		if tt.info.Default != tt.want {
			t.Errorf("%+v: default %q, want %q", tt.info, tt.info.Default, tt.want)
		}
	}
}
