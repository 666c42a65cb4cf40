package config

import (
	"errors"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadPrecedence(t *testing.T) {
	c, err := Load([]string{"-http-addr", "127.0.0.1:1"}, env(map[string]string{
		"LUTHIEN_HTTP_ADDR": "127.0.0.1:2", "OPENAI_BASE_URL": "http://127.0.0.1:3/v1"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:1" {
		t.Errorf("flag should beat env: got %s", c.HTTPAddr)
	}
	if c.OpenAIBaseURL != "http://127.0.0.1:3/v1" {
		t.Errorf("env should beat default: got %s", c.OpenAIBaseURL)
	}
	if c.AnthropicBaseURL != "https://api.anthropic.com" || c.ControlPlane != InProcess {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"bad addr", []string{"-http-addr", "nope"}, nil, "LUTHIEN_HTTP_ADDR"},
		{"bad debug addr", nil, map[string]string{"LUTHIEN_DEBUG_ADDR": "6060"}, "LUTHIEN_DEBUG_ADDR"},
		{"bad control plane", nil, map[string]string{"LUTHIEN_CONTROL_PLANE": "somewhere"}, "LUTHIEN_CONTROL_PLANE"},
		{"bad url", nil, map[string]string{"ANTHROPIC_BASE_URL": "ftp://x"}, "ANTHROPIC_BASE_URL"},
		{"bad timeout", nil, map[string]string{"LUTHIEN_POLICY_TIMEOUT": "soon"}, "LUTHIEN_POLICY_TIMEOUT"},
		{"policy file with remote control plane", nil, map[string]string{
			"LUTHIEN_CONTROL_PLANE": "127.0.0.1:9000", "LUTHIEN_POLICY_CONFIG": "p.yaml"}, "in-process"},
		{"unknown flag", []string{"-nope"}, nil, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestLogValueRedactsSecrets(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"LUTHIEN_CLIENT_API_KEY": "sk-secret-1", "ANTHROPIC_API_KEY": "sk-ant-2"}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.LogValue().String()
	if strings.Contains(s, "sk-secret-1") || strings.Contains(s, "sk-ant-2") || !strings.Contains(s, "[redacted]") {
		t.Fatalf("secrets not redacted: %s", s)
	}
}

func TestHelpListsEveryVariable(t *testing.T) {
	_, err := Load([]string{"-h"}, env(nil))
	var help *HelpError
	if !errors.As(err, &help) {
		t.Fatalf("got %v, want a HelpError", err)
	}
	for _, v := range []string{"LUTHIEN_HTTP_ADDR", "LUTHIEN_CONTROL_PLANE", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL",
		"LUTHIEN_CLIENT_API_KEY", "LUTHIEN_POLICY_CONFIG", "DATABASE_URL", "REDIS_URL", "LUTHIEN_DEBUG_ADDR"} {
		if !strings.Contains(help.Usage, "$"+v) {
			t.Errorf("usage does not mention %s:\n%s", v, help.Usage)
		}
	}
}
