package config

import (
	"strings"
	"testing"

	"luthien.dev/settings/shared/sharedtest"
)

// TestSharedSettings runs the cases every binary runs on the settings it
// shares with the control plane: the same flags and environment give the
// same values and the same errors here as in the control plane.
func TestSharedSettings(t *testing.T) {
	sharedtest.Run(t, func(args []string, getenv func(string) string) (sharedtest.Values, error) {
		c, err := Load(args, getenv)
		return sharedtest.Values{Persistence: c.Persistence, PolicyConfig: c.PolicyConfig, LogLevel: c.LogLevel,
			LogFormat: c.LogFormat, Token: c.ControlPlaneToken}, err
	})
}

func TestSettingNames(t *testing.T) {
	names, err := SettingNames()
	if err != nil {
		t.Fatal(err)
	}
	sharedtest.CheckNames(t, names)
	if names[0] != "LUTHIEN_HTTP_ADDR" || names[len(names)-1] != "LUTHIEN_CONTROL_PLANE_TOKEN" {
		t.Errorf("names not in the order Load reads them: %v", names)
	}
	for _, n := range []string{"LUTHIEN_GRPC_ADDR", "LUTHIEN_METRICS_ADDR"} {
		if strings.Contains(strings.Join(names, " "), n) {
			t.Errorf("the gateway lists the control plane's %s", n)
		}
	}
}

// TestGatewaySettings checks the gateway's own settings: flags beat the
// environment, which beats the defaults, and a refused value names its
// flag and its variable.
func TestGatewaySettings(t *testing.T) {
	c, err := Load([]string{"-policy-timeout", "5s", "-insecure-admin", "0", "-control-plane-tls", "true", "-control-plane", "cp:9000"},
		env(map[string]string{"LUTHIEN_POLICY_TIMEOUT": "9s", "LUTHIEN_SESSION_TTL": "1h", "LUTHIEN_INSECURE_ADMIN": "1",
			"LUTHIEN_METRICS_MODELS": "gpt-4o, claude-*", "LUTHIEN_ACTIVITY_HEARTBEAT": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PolicyTimeout.Seconds() != 5 || c.SessionTTL.Hours() != 1 || c.InsecureAdmin || !c.ControlPlaneTLS ||
		c.MetricsModels == nil || c.Heartbeat.Seconds() != 15 || c.BodyReadTimeout.Seconds() != 60 {
		t.Errorf("got %+v", c)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-body-read-timeout", "1"}, nil, `invalid -body-read-timeout (LUTHIEN_BODY_READ_TIMEOUT) "1": want a positive duration such as 1m`},
		{nil, map[string]string{"LUTHIEN_CONTROL_PLANE_TLS": "on"}, `invalid -control-plane-tls (LUTHIEN_CONTROL_PLANE_TLS) "on": want 1 or 0`},
		{nil, map[string]string{"OPENAI_BASE_URL": "api.openai.com"}, `invalid -openai-base-url (OPENAI_BASE_URL) "api.openai.com": want a http:// or https:// URL with a host`},
		{nil, map[string]string{"LUTHIEN_CONTROL_PLANE": "cp"}, `invalid -control-plane (LUTHIEN_CONTROL_PLANE) "cp"`},
		{nil, map[string]string{"LUTHIEN_METRICS_MODELS": "a,b c"}, `invalid -metrics-models (LUTHIEN_METRICS_MODELS)`},
	} {
		if _, err := Load(tt.args, env(tt.env)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: got %v, want an error saying %q", tt.args, tt.env, err, tt.want)
		}
	}
}
