package store

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Credentials are found in text two ways: by their form (a key that starts
// "AKIA", a JWT, a private-key block) and by the name they follow
// ("x-api-key: …", "password=…", "\"api_key\": \"…\"": secretNames).
// Both are entries of one table, credentials; how text is searched for
// them is in scan.go.

// Redacted replaces a value removed because of the name it is stored under
// (a credential key or header): the name says what it was.
const Redacted = "[redacted]"

// redactedKind is the marker of a credential found by its form:
// "[redacted:aws-access-key]".
func redactedKind(kind string) string { return "[redacted:" + kind + "]" }

// secretNames are the names whose values are credentials, lower-cased: an
// object key, header, query parameter or variable whose name ends with one
// of them ("x-api-key", "OPENAI_API_KEY", "db_password") holds one.
var secretNames = []string{
	// HTTP: Authorization, Proxy-Authorization, Cookie, Set-Cookie.
	"authorization", "cookie",
	// API keys: X-Api-Key, X-Goog-Api-Key, api_key, OPENAI_API_KEY.
	"api-key", "api_key", "apikey",
	// Passwords and secrets: db_password, client_secret, webhook_secret.
	"password", "passwd", "secret", "secret_key", "private_key",
	// AWS: aws_secret_access_key, SecretAccessKey, aws_session_token,
	// SessionToken, X-Amz-Security-Token.
	"secret_access_key", "secretaccesskey", "session_token", "sessiontoken", "security-token",
	// OAuth and others: access_token, refresh_token, id_token, X-Auth-Token.
	"access_token", "refresh_token", "id_token", "auth_token", "auth-token",
	// Azure connection strings: AccountKey=, SharedAccessKey=.
	"accountkey", "sharedaccesskey",
}

// namesPattern is the alternation of secretNames for the patterns below.
var namesPattern = "(?:" + strings.Join(quoteAll(secretNames), "|") + ")"

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = regexp.QuoteMeta(n)
	}
	return out
}

// credential is an entry of the table: a kind of credential, the literals
// its matches start with, and its pattern.
type credential struct {
	// marker replaces what the pattern finds.
	marker string
	// hints are the literals a match starts with; fold: in any ASCII case.
	hints []string
	fold  bool
	// named: the match starts with one of secretNames, where it is
	// followed by ":" or "=" (after spaces, a quote or an escaped quote).
	// Named entries are tried in table order.
	named bool
	// re is the pattern, anchored (\A) at the hint or name; group is the
	// submatch replaced (0: the whole match).
	re    *regexp.Regexp
	group int
	// notAfter and notBefore are the bytes that may not come just before
	// the match and just after what is replaced (a key inside a longer
	// token is not one).
	notAfter, notBefore *byteSet
	// keep, when set, must accept what is replaced.
	keep func(string) bool
	// whole: nothing inside a match is looked at again (a private-key
	// block, which also keeps a text of many unterminated blocks from
	// costing the square of its length).
	whole bool
	// ready is a quick test of the text just after the hint that the
	// pattern needs, so that it runs only where it may match.
	ready readiness
	// maxLen bounds the length of a match (0: unbounded): the pattern
	// runs over that much text, not the rest of it. Patterns whose keep
	// may refuse a long match have one, so that a text of many names
	// does not cost the square of its length. A match that reaches that
	// bound goes on over the bytes of extend.
	maxLen int
	extend *byteSet
}

// byteSet is a set of bytes.
type byteSet [256]bool

func newByteSet(chars string) *byteSet {
	var s byteSet
	for i := range len(chars) {
		s[chars[i]] = true
	}
	return &s
}

// complement returns the set of the bytes not in chars.
func complement(chars string) *byteSet {
	s := newByteSet(chars)
	for i := range s {
		s[i] = !s[i]
	}
	return s
}

const (
	alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// letters are the ASCII letters.
	letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// tokenChars are the bytes of base64, base64url and most token alphabets:
// a credential pattern preceded or followed by one is part of something
// longer (a hash, base64 image data) and not a credential.
var tokenChars = newByteSet(alnum + "_-+/")

// credentials is the table of credential kinds, tried in this order where
// several start at the same place.
var credentials = []*credential{
	{ // A PEM private key (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP),
		// header to footer across lines; one cut short runs to the end.
		marker: redactedKind("private-key"), hints: []string{"-----BEGIN"}, whole: true,
		re: regexp.MustCompile(`\A-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z)`),
	},
	{ // A JSON Web Token: three base64url parts, the first a JSON object
		// ("eyJ"), the signature possibly empty.
		marker: redactedKind("jwt"), hints: []string{"eyJ"}, notAfter: newByteSet(alnum + "_-+/."),
		re: regexp.MustCompile(`\AeyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*`),
	},
	{ // An Anthropic API key: sk-ant-api03-…, sk-ant-admin01-….
		marker: redactedKind("anthropic-key"), hints: []string{"sk-ant-"}, notAfter: tokenChars,
		re: regexp.MustCompile(`\Ask-ant-[A-Za-z0-9_-]{8,}`),
	},
	{ // An "sk-" API key: OpenAI (sk-proj-…, sk-svcacct-…, legacy sk-…),
		// DeepSeek, OpenRouter (sk-or-…) and others. It needs a digit or a
		// capital: "sk-learn-compatible" is not one.
		marker: redactedKind("api-key"), hints: []string{"sk-"}, notAfter: tokenChars,
		re:   regexp.MustCompile(`\Ask-[A-Za-z0-9_-]{8,}`),
		keep: func(s string) bool { return strings.ContainsFunc(s[3:], isDigitOrUpper) },
	},
	{ // A Stripe secret or restricted key: sk_live_…, rk_test_….
		marker: redactedKind("stripe-key"), hints: []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"}, notAfter: tokenChars,
		re: regexp.MustCompile(`\A[sr]k_(?:live|test)_[A-Za-z0-9]{10,}`),
	},
	{ // An AWS access key id: AKIA (long-term) or ASIA (temporary) and 16
		// more capitals and digits.
		marker: redactedKind("aws-access-key"), hints: []string{"AKIA", "ASIA"}, notAfter: tokenChars, notBefore: tokenChars, maxLen: 20,
		re: regexp.MustCompile(`\A(?:AKIA|ASIA)[A-Z0-9]{16}`),
	},
	{ // A Google API key: AIza and 35 more characters.
		marker: redactedKind("google-api-key"), hints: []string{"AIza"}, notAfter: tokenChars, notBefore: tokenChars, maxLen: 39,
		re: regexp.MustCompile(`\AAIza[0-9A-Za-z_-]{35}`),
	},
	{ // A GitHub token: personal (ghp_), OAuth (gho_), user-to-server
		// (ghu_), server-to-server (ghs_), refresh (ghr_).
		marker: redactedKind("github-token"), hints: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, notAfter: tokenChars, notBefore: tokenChars, maxLen: 255,
		re: regexp.MustCompile(`\Agh[pousr]_[A-Za-z0-9]{36,251}`),
	},
	{ // A GitHub fine-grained personal access token.
		marker: redactedKind("github-token"), hints: []string{"github_pat_"}, notAfter: tokenChars, maxLen: 266,
		re: regexp.MustCompile(`\Agithub_pat_[A-Za-z0-9_]{22,255}`),
	},
	{ // A GitLab personal access token.
		marker: redactedKind("gitlab-token"), hints: []string{"glpat-"}, notAfter: tokenChars,
		re: regexp.MustCompile(`\Aglpat-[A-Za-z0-9_-]{20,}`),
	},
	{ // A Slack token: bot (xoxb-), user (xoxp-), app (xoxa-), refresh
		// (xoxr-), legacy (xoxo-, xoxs-).
		marker: redactedKind("slack-token"), hints: []string{"xox"}, notAfter: tokenChars,
		re: regexp.MustCompile(`\Axox[abposr]-[A-Za-z0-9-]{10,}`),
	},
	{ // A Slack incoming webhook: its path is the secret.
		marker: redactedKind("slack-webhook"), hints: []string{"hooks.slack.com/"}, group: 1,
		re: regexp.MustCompile(`\Ahooks\.slack\.com/((?:services|workflows|triggers)/[A-Za-z0-9/_-]+)`),
	},
	{ // A Hugging Face access token.
		marker: redactedKind("huggingface-token"), hints: []string{"hf_"}, notAfter: tokenChars, notBefore: tokenChars, maxLen: 43,
		re: regexp.MustCompile(`\Ahf_[A-Za-z0-9]{34,40}`),
	},
	{ // An npm access token.
		marker: redactedKind("npm-token"), hints: []string{"npm_"}, notAfter: tokenChars, notBefore: tokenChars, maxLen: 40,
		re: regexp.MustCompile(`\Anpm_[A-Za-z0-9]{36}`),
	},
	{ // A PyPI API token (a macaroon for pypi.org).
		marker: redactedKind("pypi-token"), hints: []string{"pypi-AgEIcHlwaS5vcmc"}, notAfter: tokenChars,
		re: regexp.MustCompile(`\Apypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}`),
	},
	{ // A SendGrid API key.
		marker: redactedKind("sendgrid-key"), hints: []string{"SG."}, notAfter: tokenChars, notBefore: tokenChars, maxLen: 69,
		re: regexp.MustCompile(`\ASG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}`),
	},
	{ // The password of a URL (scheme://user:password@host): only the
		// password goes.
		marker: redactedKind("url-password"), hints: []string{"://"}, group: 1, maxLen: 3 + 128 + 1 + 256 + 1,
		re: regexp.MustCompile(`\A://[^\s/?#@:"'\\<>]{0,128}:([^\s/?#@"'\\<>]{1,256})@`),
	},
	{ // A bearer token ("Bearer …" anywhere): the token goes, the word
		// stays. It needs a digit, mixed case or 20 characters: "Bearer
		// authentication" is prose.
		marker: redactedKind("bearer-token"), hints: []string{"bearer"}, fold: true, group: 1, notAfter: newByteSet(letters), ready: afterBearer,
		re:   regexp.MustCompile(`(?i)\Abearer\s+([A-Za-z0-9._~+/-]{8,}=*)`),
		keep: tokenLike,
	},
	{ // A named value in JSON escaped once inside text:
		// {\"api_key\": \"…\"}.
		marker: Redacted, named: true, group: 1,
		re: regexp.MustCompile(`(?i)\A` + namesPattern + `\\"\s*:\s*\\"((?:[^"\\]|\\[^"])*)\\"`),
	},
	{ // A named value in JSON inside text: {"api_key": "…"}.
		marker: Redacted, named: true, group: 1,
		re: regexp.MustCompile(`(?i)\A` + namesPattern + `"\s*:\s*"((?:[^"\\]|\\.)*)"`),
	},
	{ // A named value in code with single quotes: {'password': '…'}.
		marker: Redacted, named: true, group: 1,
		re: regexp.MustCompile(`(?i)\A` + namesPattern + `'\s*:\s*'((?:[^'\\]|\\.)*)'`),
	},
	{ // A Cookie or Set-Cookie header: every cookie of the line.
		marker: Redacted, named: true, group: 1, maxLen: 128, extend: complement("\r\n\"'\\`"),
		re:   regexp.MustCompile(`(?i)\Acookie\s*:\s*([^\r\n"'\\\x60]{4,})`),
		keep: credentialLike,
	},
	{ // A named header, parameter or variable with an authorization
		// scheme: "Authorization: Bearer …", "Authorization: Basic …".
		marker: Redacted, named: true, group: 1, maxLen: 128, extend: complement(" \t\n\f\r\"'`,;&"),
		re:   regexp.MustCompile(`(?i)\A` + namesPattern + `\s*[:=]\s*["'\x60]?(?:bearer|basic|token|digest|negotiate|ntlm)\s+([^\s"'\x60,;&]{4,})`),
		keep: notCode,
	},
	{ // A named header, parameter or variable: "x-api-key: …",
		// "api_key=…", "DB_PASSWORD=…", "password: …". What looks like code
		// or a placeholder ("os.getenv(…)", "${TOKEN}", "YOUR_API_KEY",
		// "required") is not a value.
		marker: Redacted, named: true, group: 1, maxLen: 128, extend: complement(" \t\n\f\r\"'`,;&"),
		re:   regexp.MustCompile(`(?i)\A` + namesPattern + `\s*[:=]\s*["'\x60]?([^\s"'\x60,;&]{4,})`),
		keep: credentialLike,
	},
}

func isDigitOrUpper(r rune) bool { return '0' <= r && r <= '9' || 'A' <= r && r <= 'Z' }

// tokenLike reports whether s looks generated rather than written: a
// digit, a capital after a lower-case letter or the reverse, or 20
// characters.
func tokenLike(s string) bool {
	var digit, upper, lower bool
	for i := range len(s) {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digit = true
		case 'A' <= c && c <= 'Z':
			upper = upper || i > 0
		case 'a' <= c && c <= 'z':
			lower = true
		}
	}
	return digit || upper && lower || utf8.RuneCountInString(s) >= 20
}

// notCode reports whether s is free of what code and templates put where
// a value would be: calls, indexing, interpolation, tags.
func notCode(s string) bool { return !strings.ContainsAny(s, "(){}[]<>$") }

// credentialLike reports whether s, following a credential's name, is a
// value rather than code, a placeholder or a word: it is not code, and it
// has a character other than letters, "_", "-" and "." (a digit, "=",
// "/", "+", ...): "abcdef123" and "session=abc" are values;
// "YOUR_API_KEY", "config.api_key", "not-set" and "required" are not.
func credentialLike(s string) bool {
	if !notCode(s) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-' || c == '.') {
			return true
		}
	}
	return false
}
