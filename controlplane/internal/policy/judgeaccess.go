package policy

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"luthien.dev/controlplane/internal/llm"
)

// Environment variables that decide where judges may send requests and
// which credentials of the environment they may use.
const (
	// EnvJudgeKeyEnvs lists the variables api_key_env may name,
	// comma-separated; an entry ending in * allows every name with that
	// prefix. Default: DefaultJudgeKeyEnvs.
	EnvJudgeKeyEnvs = "LUTHIEN_JUDGE_KEY_ENVS"
	// EnvJudgeHosts, when set, lists the only hosts judges may call,
	// comma-separated: "host" (any port) or "host:port".
	EnvJudgeHosts = "LUTHIEN_JUDGE_HOSTS"
	// EnvJudgeAPIKey is the judges' own key, sent to the providers'
	// endpoints like the provider keys below.
	EnvJudgeAPIKey = "LUTHIEN_JUDGE_API_KEY"
	// EnvOpenAIBaseURL and EnvAnthropicBaseURL name the providers'
	// endpoints besides their public ones: a judge there gets the
	// provider key of the environment.
	EnvOpenAIBaseURL    = "OPENAI_BASE_URL"
	EnvAnthropicBaseURL = "ANTHROPIC_BASE_URL"
	// EnvOpenAIAPIKey and EnvAnthropicAPIKey are the provider keys.
	EnvOpenAIAPIKey    = "OPENAI_API_KEY"
	EnvAnthropicAPIKey = "ANTHROPIC_API_KEY"
)

// DefaultJudgeKeyEnvs is the default of LUTHIEN_JUDGE_KEY_ENVS.
const DefaultJudgeKeyEnvs = EnvOpenAIAPIKey + "," + EnvAnthropicAPIKey + ",LUTHIEN_JUDGE_*"

// JudgeAccess decides where judges may send requests and which keys of
// the environment they get. A judge without a key of its own (api_key,
// api_key_env) gets the environment's key of its format only when its
// endpoint is that provider's (same scheme, host and port): a policy
// cannot send the control plane's keys anywhere else.
type JudgeAccess struct {
	// ProviderBases are, per format (llm.FormatOpenAI,
	// llm.FormatAnthropic), the provider's endpoints: the public one and
	// the configured one.
	ProviderBases map[string][]string
	// KeyEnvs are the variables api_key_env may name; an entry ending in
	// * allows every name with that prefix.
	KeyEnvs []string
	// Hosts, when not empty, are the only hosts judges may call: "host"
	// (any port) or "host:port", lower case.
	Hosts []string
	// Getenv reads the environment; nil is os.Getenv.
	Getenv func(string) string
}

// envName is a variable name api_key_env may name, or a prefix pattern of
// LUTHIEN_JUDGE_KEY_ENVS.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// JudgeAccessFromEnv reads the judge settings from the environment
// (LUTHIEN_JUDGE_KEY_ENVS, LUTHIEN_JUDGE_HOSTS, OPENAI_BASE_URL,
// ANTHROPIC_BASE_URL); getenv nil is os.Getenv. An invalid setting is an
// error naming the variable.
func JudgeAccessFromEnv(getenv func(string) string) (JudgeAccess, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	a := JudgeAccess{ProviderBases: map[string][]string{
		llm.FormatOpenAI:    {llm.DefaultOpenAIBase},
		llm.FormatAnthropic: {llm.DefaultAnthropicBase},
	}, Getenv: getenv}
	for format, name := range map[string]string{llm.FormatOpenAI: EnvOpenAIBaseURL, llm.FormatAnthropic: EnvAnthropicBaseURL} {
		if base := getenv(name); base != "" {
			if _, err := llm.ParseBase(base); err != nil {
				return JudgeAccess{}, fmt.Errorf("%s: %w", name, err)
			}
			a.ProviderBases[format] = append(a.ProviderBases[format], base)
		}
	}
	var err error
	if a.KeyEnvs, err = envNameList(getenv, EnvJudgeKeyEnvs, DefaultJudgeKeyEnvs); err != nil {
		return JudgeAccess{}, err
	}
	if a.Hosts, err = hostList(getenv, EnvJudgeHosts); err != nil {
		return JudgeAccess{}, err
	}
	return a, nil
}

// envNameList reads the setting name: a comma-separated list of variable
// names, a name ending in * standing for a prefix; def when unset.
func envNameList(getenv func(string) string, name, def string) ([]string, error) {
	value := getenv(name)
	if value == "" {
		value = def
	}
	var out []string
	for _, e := range splitList(value) {
		if !envName.MatchString(strings.TrimSuffix(e, "*")) {
			return nil, fmt.Errorf("%s: %q is not a variable name (or a prefix ending in *)", name, e)
		}
		out = append(out, e)
	}
	return out, nil
}

// hostList reads the setting name: a comma-separated list of "host" or
// "host:port", normalized.
func hostList(getenv func(string) string, name string) ([]string, error) {
	var out []string
	for _, h := range splitList(getenv(name)) {
		host, err := normalizeHost(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, host)
	}
	return out, nil
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// normalizeHost checks an entry of LUTHIEN_JUDGE_HOSTS and returns it in
// lower case, an IPv6 address without brackets when it has no port.
func normalizeHost(h string) (string, error) {
	h = strings.ToLower(h)
	if strings.Contains(h, "/") {
		return "", fmt.Errorf("%q: want a host or host:port, not a URL", h)
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port: the whole entry is the host.
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ""
	}
	if host == "" || strings.ContainsAny(host, "[] @") {
		return "", fmt.Errorf("%q: want a host or host:port", h)
	}
	if port == "" {
		return host, nil
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("%q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

// getenv reads a variable.
func (a JudgeAccess) getenv(name string) string {
	if a.Getenv == nil {
		return os.Getenv(name)
	}
	return a.Getenv(name)
}

// hostAllowed reports whether judges may call u's host.
func (a JudgeAccess) hostAllowed(u *url.URL) bool {
	if len(a.Hosts) == 0 {
		return true
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return slices.Contains(a.Hosts, host) || slices.Contains(a.Hosts, net.JoinHostPort(host, port))
}

// keyEnvAllowed reports whether api_key_env may name the variable.
func (a JudgeAccess) keyEnvAllowed(name string) bool {
	if !envName.MatchString(name) {
		return false
	}
	for _, e := range a.KeyEnvs {
		if prefix, ok := strings.CutSuffix(e, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == e {
			return true
		}
	}
	return false
}

// isProvider reports whether u is an endpoint of format's provider.
func (a JudgeAccess) isProvider(format string, u *url.URL) bool {
	origin := llm.Origin(u)
	for _, base := range a.ProviderBases[format] {
		if pu, err := llm.ParseBase(base); err == nil && llm.Origin(pu) == origin {
			return true
		}
	}
	return false
}

// providerKey returns the environment's key for format's provider:
// LUTHIEN_JUDGE_API_KEY, else the provider's variable.
func (a JudgeAccess) providerKey(format string) string {
	if k := a.getenv(EnvJudgeAPIKey); k != "" {
		return k
	}
	if format == llm.FormatAnthropic {
		return a.getenv(EnvAnthropicAPIKey)
	}
	return a.getenv(EnvOpenAIAPIKey)
}

// judgeKey reads a judge's endpoint and credential settings (api_base,
// api_key, api_key_env) for format and returns the base URL and the key
// to send (empty: none). Problems are recorded on s.
func (a JudgeAccess) judgeKey(s *settings, format string) (base, key string) {
	base = s.str("api_base", "")
	inline := s.str("api_key", "")
	keyEnv := s.str("api_key_env", "")
	u, err := llm.ParseBase(llm.DefaultBase(format, base))
	if err != nil {
		s.fail("api_base", strings.TrimPrefix(err.Error(), "llm: "))
		return base, ""
	}
	if !a.hostAllowed(u) {
		s.fail("api_base", fmt.Sprintf("host %q is not allowed for judges (%s: %s)", u.Host, EnvJudgeHosts, strings.Join(a.Hosts, ", ")))
		return base, ""
	}
	switch {
	case inline != "" && keyEnv != "":
		s.fail("api_key_env", "give api_key or api_key_env, not both")
	case keyEnv != "":
		if !a.keyEnvAllowed(keyEnv) {
			s.fail("api_key_env", fmt.Sprintf("variable %q is not one judges may use (%s: %s)", keyEnv, EnvJudgeKeyEnvs, strings.Join(a.KeyEnvs, ", ")))
			return base, ""
		}
		if key = a.getenv(keyEnv); key == "" {
			s.fail("api_key_env", fmt.Sprintf("variable %q is not set", keyEnv))
		}
	case inline != "":
		key = inline
	case a.isProvider(format, u):
		key = a.providerKey(format)
	}
	// Otherwise the endpoint is not the provider's and no key was named:
	// the judge sends no credential.
	return base, key
}
