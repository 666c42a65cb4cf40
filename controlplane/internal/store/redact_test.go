package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Credentials of every kind, made up for the tests (split so that no
// scanner mistakes this file for a leak).
var (
	testPEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bqZ9xTestTestTest\nZ9xQ0TestTestTestTest==\n-----END RSA " + "PRIVATE KEY-----"
	testJWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	testAnt = "sk-" + "ant-api03-Zx8Qw1Lm5Rt7Yp3Nc6Vb9Gh2Jk4Df0Sa"
	testSK  = "sk-" + "proj-4Fh8Kq2Lm9Zx7Cv3Bn6Qw1Er5Ty0Ui"
	testStr = "sk_" + "live_51H8abcdEFGHijklMNOP0123"
	testAK  = "AKIA" + "IOSFODNN7EXAMPLE"
	testAS  = "ASIA" + "Y34FZKBOKMUTVV7A"
	testGH  = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
	testGHF = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
	testGL  = "glpat-" + "Ab12Cd34Ef56Gh78Ij90"
	testGoo = "AIza" + "SyD4Xy9_Xy9_Xy9_Xy9_Xy9_Xy9_Xy9_abc"
	testSl  = "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKlMnOp"
	testHF  = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
	testNpm = "npm_" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78"
	testPy  = "pypi-" + "AgEIcHlwaS5vcmcCJGI4YmQ0ZDUwLWE5ZTktNGI3Yi1iZGQ4LTk0ZDFlZTZiODZiNwACKlsz"
	testSG  = "SG." + "Ab12Cd34Ef56Gh78Ij90Kl" + "." + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv1"
)

func TestRedactCredentials(t *testing.T) {
	tests := []struct {
		kind      string
		positives map[string]string // input: what RedactString makes of it
		negatives []string          // kept as they are
	}{
		{"private-key", map[string]string{
			"key:\n" + testPEM + "\nrest": "key:\n[redacted:private-key]\nrest",
			"-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH " + "PRIVATE KEY-----": "[redacted:private-key]",
			// In JSON text, lines are \n escapes.
			`"-----BEGIN ` + `PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END ` + `PRIVATE KEY-----\n"`: `"[redacted:private-key]\n"`,
			"cut short: -----BEGIN EC " + "PRIVATE KEY-----\nMHcCAQEEIBTestTest":                             "cut short: [redacted:private-key]",
		}, []string{
			"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
			"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----",
			"a private key block starts with -----BEGIN and a label",
		}},
		{"jwt", map[string]string{
			"token=" + testJWT + ";": "token=[redacted:jwt];",
		}, []string{"eyJhbGciOiJIUzI1NiJ9 alone", "a.eyJhbGciOi.eyJzdWIiOi.sig"}},
		{"anthropic-key", map[string]string{
			"ANTHROPIC_API_KEY is " + testAnt: "ANTHROPIC_API_KEY is [redacted:anthropic-key]",
		}, []string{"keys start with sk-ant- and more"}},
		{"api-key", map[string]string{
			"use " + testSK + " now":                "use [redacted:api-key] now",
			"use sk-proj-ABCDEFGHIJKLMNOP now":      "use [redacted:api-key] now",
			`{"k":"sk-or-v1-0123456789abcdef"}`:     `{"k":"[redacted:api-key]"}`,
			"the key is sk-1234567890abcdef, right": "the key is [redacted:api-key], right",
		}, []string{"task-management-system", "sk-learn-compatible", "sk-short", "risk-assessment-2024", "desk-1234567890"}},
		{"stripe-key", map[string]string{"stripe " + testStr: "stripe [redacted:stripe-key]"}, []string{"sk_live_ is the prefix"}},
		{"aws-access-key", map[string]string{
			"aws_access_key_id = " + testAK:    "aws_access_key_id = [redacted:aws-access-key]",
			`{"AccessKeyId":"` + testAS + `"}`: `{"AccessKeyId":"[redacted:aws-access-key]"}`,
		}, []string{"AKIA alone", "AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLEX", "xAKIAIOSFODNN7EXAMPLE", "akiaiosfodnn7example"}},
		{"aws-secret-key (by name)", map[string]string{
			"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY":      "aws_secret_access_key = [redacted]",
			`{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`:       `{"SecretAccessKey": "[redacted]"}`,
			"export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "export AWS_SECRET_ACCESS_KEY=[redacted]",
		}, []string{"set aws_secret_access_key in ~/.aws/credentials"}},
		{"github-token", map[string]string{
			"GITHUB_TOKEN " + testGH:   "GITHUB_TOKEN [redacted:github-token]",
			"fine-grained: " + testGHF: "fine-grained: [redacted:github-token]",
		}, []string{"ghp_short", "the ghp_ prefix", "github_pat_ tokens"}},
		{"gitlab-token", map[string]string{"token " + testGL: "token [redacted:gitlab-token]"}, []string{"glpat-short"}},
		{"google-api-key", map[string]string{"?key=" + testGoo + "&q=1": "?key=[redacted:google-api-key]&q=1"}, []string{"AIza is the prefix", "AIzaSyD4Xy9_short"}},
		{"slack-token", map[string]string{"SLACK_BOT_TOKEN " + testSl: "SLACK_BOT_TOKEN [redacted:slack-token]"}, []string{"xoxb tokens", "the xox- prefix"}},
		{"slack-webhook", map[string]string{
			"post to https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX ok": "post to https://hooks.slack.com/[redacted:slack-webhook] ok",
		}, []string{"https://hooks.slack.com/ is the host"}},
		{"huggingface-token", map[string]string{"HF " + testHF: "HF [redacted:huggingface-token]"}, []string{"hf_hub_download(repo_id)"}},
		{"npm-token", map[string]string{"//registry.npmjs.org/:_authToken=" + testNpm: "//registry.npmjs.org/:_authToken=[redacted:npm-token]"}, []string{"npm_config_cache"}},
		{"pypi-token", map[string]string{"password = " + testPy: "password = [redacted]", "twine " + testPy: "twine [redacted:pypi-token]"}, nil},
		{"sendgrid-key", map[string]string{"key " + testSG: "key [redacted:sendgrid-key]"}, []string{"SG.short.key"}},
		{"url-password", map[string]string{
			"postgres://app:s3cr3t@db:5432/x":                      "postgres://app:[redacted:url-password]@db:5432/x",
			"https://x-access-token:" + testGH + "@github.com/o/r": "https://x-access-token:[redacted:url-password]@github.com/o/r",
		}, []string{"https://github.com/org/repo", "postgres://postgres@localhost/db", "http://[::1]:8080/path", "see http://localhost:8080/x"}},
		{"bearer-token", map[string]string{
			"token: Bearer 0123456789abcdef": "token: Bearer [redacted:bearer-token]",
			"send Bearer " + testJWT:         "send Bearer [redacted:bearer-token]",
		}, []string{"Bearer authentication is described in RFC 6750", "the bearer of this letter", "Bearer YOUR_TOKEN", "Bearer {token}"}},
		{"named values", map[string]string{
			`curl -H "x-api-key: abcdef123" https://x`:                    `curl -H "x-api-key: [redacted]" https://x`,
			`GET /v1?api_key=abcdef123&q=1`:                               `GET /v1?api_key=[redacted]&q=1`,
			`Cookie: session=abcdef`:                                      `Cookie: [redacted]`,
			"Cookie: a=1; session=abc123; theme=dark\nnext":               "Cookie: [redacted]\nnext",
			"Set-Cookie: id=a3fWa; Expires=Thu, 21 Oct 2021 07:28:00 GMT": "Set-Cookie: [redacted]",
			"x-api-key: " + strings.Repeat("a1", 1000) + " end":           "x-api-key: [redacted] end",
			"DB_PASSWORD=hunter2":                                         "DB_PASSWORD=[redacted]",
			`password: "hunter2"`:                                         `password: "[redacted]"`,
			"OPENAI_API_KEY=" + testSK:                                    "OPENAI_API_KEY=[redacted]",
			`Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y`:              `Authorization: Bearer [redacted]`,
			`Authorization: Basic dXNlcjpwYXNz`:                           `Authorization: Basic [redacted]`,
			`{"model":"m","api_key":"abc\"def","x":1}`:                    `{"model":"m","api_key":"[redacted]","x":1}`,
			`{\"Authorization\": \"Token abc\", \"a\": 1}`:                `{\"Authorization\": \"[redacted]\", \"a\": 1}`,
			`{"client_secret": "c2VjcmV0"}`:                               `{"client_secret": "[redacted]"}`,
			"DefaultEndpointsProtocol=https;AccountName=x;AccountKey=Zm9vYmFy+Zm9v/YmFy==;EndpointSuffix=core": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=[redacted];EndpointSuffix=core",
		}, []string{
			`password = os.getenv("DB_PASSWORD")`,
			`api_key = config.api_key`,
			`headers["Authorization"] = f"Bearer {token}"`,
			`apiKey: process.env.ANTHROPIC_API_KEY`,
			"password: required",
			"export API_KEY=$API_KEY",
			"x-api-key: <your key>",
			"the keyboard is fine, the cookie jar too",
			"monkey: banana",
		}},
	}
	for _, tt := range tests {
		for in, want := range tt.positives {
			if got := RedactString(in); got != want {
				t.Errorf("%s: RedactString(%q)\n = %q\nwant %q", tt.kind, in, got, want)
			}
		}
		for _, in := range tt.negatives {
			if got := RedactString(in); got != in {
				t.Errorf("%s: RedactString(%q) = %q, want it kept", tt.kind, in, got)
			}
		}
	}
}

// ordinaryText is what bodies are made of and must come back as it is.
var ordinaryText = []string{
	agentText,
	"Keys, tokens and passwords belong in a secret manager: never paste an API key, a bearer token or a private key into a chat.",
	"Use Bearer authentication (RFC 6750); the access token goes in the Authorization header.",
	"AWS access key ids start with AKIA or ASIA; GitHub tokens with ghp_; Google keys with AIza; JWTs with eyJ.",
	"UUIDs: 123e4567-e89b-12d3-a456-426614174000 550e8400-e29b-41d4-a716-446655440000",
	"sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 sha512 cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
	"func main() {\n\tkey := os.Getenv(\"API_KEY\")\n\tclient := anthropic.NewClient(option.WithAPIKey(key))\n\tpassword := flag.String(\"password\", \"\", \"the password\")\n}",
	"const headers = { Authorization: `Bearer ${token}`, 'x-api-key': process.env.API_KEY };",
	"git checkout -b task-management && npm run build-and-test; pip install scikit-learn",
	"https://github.com/org/repo/blob/main/README.md?plain=1#L10 and postgres://postgres@localhost:5432/app",
}

func TestRedactKeepsOrdinaryText(t *testing.T) {
	for _, s := range ordinaryText {
		if got := RedactString(s); got != s {
			t.Errorf("RedactString changed ordinary text:\n%q\n=>\n%q", s, got)
		}
	}
	// Documents without credentials come back as they are: the same
	// bytes, not a copy.
	for _, bb := range benchBodies() {
		if bb.name == "agent-64KiB-credentials" {
			continue
		}
		if out := RedactJSON(bb.body); !sameBytes(out, bb.body) {
			t.Errorf("%s: rewritten: %.200s", bb.name, out)
		}
	}
}

func sameBytes(a, b []byte) bool { return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0]) }

func TestRedactJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"credential keys, any case and depth",
			`{"headers":{"Authorization":"Bearer abc","X-Api-Key":"k","cookie":"a=b","user-agent":"ua"},"api_key":"plain","nested":[{"Set-Cookie":"s"}]}`,
			`{"headers":{"Authorization":"[redacted]","X-Api-Key":"[redacted]","cookie":"[redacted]","user-agent":"ua"},"api_key":"[redacted]","nested":[{"Set-Cookie":"[redacted]"}]}`},
		{"keys ending with a credential name", `{"db_password":"x","OPENAI_API_KEY":"y","max_tokens":5,"input_tokens":1}`,
			`{"db_password":"[redacted]","OPENAI_API_KEY":"[redacted]","max_tokens":5,"input_tokens":1}`},
		{"non-string values under a credential key", `{"api_key":123,"token":{"password":["a","b"],"n":1.50}}`,
			`{"api_key":"[redacted]","token":{"password":"[redacted]","n":1.50}}`},
		{"a tool schema's password parameter is walked, not replaced",
			`{"properties":{"password":{"type":"string","description":"the user's password"}}}`,
			`{"properties":{"password":{"type":"string","description":"the user's password"}}}`},
		{"credentials in strings", `{"note":"my key is ` + testAnt + ` ok","n":3.50,"short":"sk-abc"}`,
			`{"note":"my key is [redacted:anthropic-key] ok","n":3.50,"short":"sk-abc"}`},
		{"a key spelled with escapes", `{"\u0061pi_key":"hidden"}`, `{"\u0061pi_key":"[redacted]"}`},
		{"a credential spelled with escapes", `{"a":"\u0041KIAIOSFODNN7EXAMPLE"}`, `{"a":"[redacted:aws-access-key]"}`},
		{"a credential split by an escaped slash", `{"a":"Bearer abc\/def0123456"}`, `{"a":"Bearer [redacted:bearer-token]"}`},
		{"a private key across escaped lines", `{"key":"` + strings.ReplaceAll(testPEM, "\n", `\n`) + `\n","b":"<b>"}`,
			`{"key":"[redacted:private-key]\n","b":"<b>"}`},
		{"escaped quotes around a credential", `{"a":"say \"` + testAK + `\" twice"}`, `{"a":"say \"[redacted:aws-access-key]\" twice"}`},
		{"whitespace and layout kept", "{\n  \"a\" : \"" + testSK + "\" ,\n  \"b\": [ 1, 2 ]\n}", "{\n  \"a\" : \"[redacted:api-key]\" ,\n  \"b\": [ 1, 2 ]\n}"},
		{"not JSON: redacted as text", `upstream said: bad key ` + testSK, `upstream said: bad key [redacted:api-key]`},
	}
	for _, tt := range tests {
		if got := string(RedactJSON([]byte(tt.in))); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
	m := RedactMap(map[string]any{"API-KEY": "x", "list": []any{"sk-1234567890abcdef"}}).(map[string]any)
	if m["API-KEY"] != Redacted || m["list"].([]any)[0] != "[redacted:api-key]" {
		t.Errorf("RedactMap = %v", m)
	}
}

// plantable are credentials the fuzz target plants in arbitrary text, with
// the part of each that must not survive.
var plantable = []struct{ text, needle string }{
	{testPEM, "ZTestTestTestTest"[1:]}, {testJWT, testJWT[40:]}, {testAnt, testAnt[10:]}, {testSK, testSK[8:]},
	{testStr, testStr[8:]}, {testAK, testAK[4:]}, {testAS, testAS[4:]}, {testGH, testGH[4:]}, {testGHF, testGHF[11:]},
	{testGL, testGL[6:]}, {testGoo, testGoo[4:]}, {testSl, testSl[5:]}, {testHF, testHF[3:]}, {testNpm, testNpm[4:]},
	{testPy, testPy[20:]}, {testSG, testSG[3:]},
	{"https://u:Pw0rd9xQ@db.example", "Pw0rd9xQ"}, {"Bearer Tk0123456789xyz", "Tk0123456789xyz"},
	{"x-api-key: Zq81x7Lm", "Zq81x7Lm"}, {"aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "K7MDENG/bPxRfiCY"},
}

// FuzzRedact checks, for any text: redaction never panics; a valid JSON
// document stays valid and is redacted as its decoded tree would be
// (RedactMap); a credential planted in the text (between spaces, as a
// plain string or inside a JSON string) never survives.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), uint8(0), uint16(10))
	f.Add([]byte(`{"a":"\u0041KIA","api_key":{"x":[1,"sk-"]},"b":"\/\/"}`), uint8(5), uint16(3))
	f.Add([]byte("Authorization: Bearer -----BEGIN x"), uint8(0), uint16(22))
	f.Add([]byte("caf\xe9 \x00 \"\\u0000\""), uint8(17), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, which uint8, at uint16) {
		_ = RedactString(string(data))
		out := RedactJSON(data)
		if json.Valid(data) {
			if !json.Valid(out) {
				t.Fatalf("RedactJSON(%q) = %q, not JSON", data, out)
			}
			if got, want := decodeJSON(t, out), RedactMap(decodeJSON(t, data)); !reflect.DeepEqual(got, want) {
				t.Fatalf("RedactJSON(%q) = %q\ndecoded %#v\nthe tree redacted: %#v", data, out, got, want)
			}
		}
		p := plantable[int(which)%len(plantable)]
		if bytes.Contains(data, []byte(p.needle)) {
			return
		}
		pos := int(at) % (len(data) + 1)
		text := string(data[:pos]) + " " + p.text + " " + string(data[pos:])
		if got := RedactString(text); strings.Contains(got, p.needle) {
			t.Fatalf("RedactString(%q) = %q keeps the credential", text, got)
		}
		doc, _ := json.Marshal(map[string]string{"a": text})
		out = RedactJSON(doc)
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil || strings.Contains(back["a"], p.needle) {
			t.Fatalf("RedactJSON(%s) = %s (%v) keeps the credential", doc, out, err)
		}
	})
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}
