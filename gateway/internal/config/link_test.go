package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "test-token-0123456789abcdef"

func TestLinkSettings(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	split := map[string]string{"LUTHIEN_CONTROL_PLANE": "cp.internal:9000"}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range split {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for _, tt := range []struct {
		name      string
		args      []string
		env       map[string]string
		wantErrIn string
		check     func(Config) bool
	}{
		{name: "token from the environment", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": testToken}),
			check: func(c Config) bool { return c.ControlPlaneToken == testToken && !c.ControlPlaneTLS }},
		{name: "token from a file", args: []string{"-control-plane-token-file", tokenFile}, env: split,
			check: func(c Config) bool { return c.ControlPlaneToken == testToken }},
		{name: "token in process", env: map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN_FILE": tokenFile},
			check: func(c Config) bool { return c.ControlPlaneToken == testToken }},
		{name: "a CA turns TLS on", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_CA": "/ca.pem"}),
			check: func(c Config) bool { return c.ControlPlaneTLS && c.ControlPlaneCA == "/ca.pem" }},
		{name: "TLS with the system roots", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TLS": "1"}),
			check: func(c Config) bool { return c.ControlPlaneTLS && c.ControlPlaneCA == "" }},
		{name: "server name", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_SERVER_NAME": "cp"}),
			check: func(c Config) bool { return c.ControlPlaneTLS && c.ControlPlaneServerName == "cp" }},
		{name: "token and file", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": testToken, "LUTHIEN_CONTROL_PLANE_TOKEN_FILE": tokenFile}),
			wantErrIn: "both set"},
		{name: "empty token file", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN_FILE": empty}), wantErrIn: "is empty"},
		{name: "short token", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": "short"}), wantErrIn: "shorter than 16"},
		{name: "token with a newline inside", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TOKEN": "0123456789\nabcdef"}), wantErrIn: "printable ASCII"},
		{name: "certificate without key", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_CERT": "/c.pem"}), wantErrIn: "go together"},
		{name: "TLS in process", env: map[string]string{"LUTHIEN_CONTROL_PLANE_CA": "/ca.pem"}, wantErrIn: "only to a standalone control plane"},
		{name: "bad TLS switch", env: with(map[string]string{"LUTHIEN_CONTROL_PLANE_TLS": "on"}), wantErrIn: "LUTHIEN_CONTROL_PLANE_TLS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, env(tt.env))
			if tt.wantErrIn != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrIn) {
					t.Fatalf("got %v, want an error mentioning %q", err, tt.wantErrIn)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected link settings: %+v", c)
			}
			if s := c.LogValue().String(); strings.Contains(s, testToken) {
				t.Errorf("the token is logged: %s", s)
			}
		})
	}
}

func TestHelpListsLinkVariables(t *testing.T) {
	_, err := Load([]string{"-h"}, env(nil))
	var help *HelpError
	if !errors.As(err, &help) {
		t.Fatalf("got %v, want a HelpError", err)
	}
	for _, v := range []string{"LUTHIEN_CONTROL_PLANE_TOKEN", "LUTHIEN_CONTROL_PLANE_TOKEN_FILE", "LUTHIEN_CONTROL_PLANE_TLS",
		"LUTHIEN_CONTROL_PLANE_CA", "LUTHIEN_CONTROL_PLANE_CERT", "LUTHIEN_CONTROL_PLANE_KEY", "LUTHIEN_CONTROL_PLANE_SERVER_NAME"} {
		if !strings.Contains(help.Usage, "$"+v+")") && !strings.Contains(help.Usage, "$"+v+";") {
			t.Errorf("usage does not mention %s:\n%s", v, help.Usage)
		}
	}
	if strings.Contains(help.Usage, "-control-plane-token ") {
		t.Error("the token has a flag: it would show in process listings")
	}
}
