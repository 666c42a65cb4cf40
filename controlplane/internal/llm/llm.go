// Package llm calls a judge model through an OpenAI Chat Completions or an
// Anthropic Messages endpoint, with a deadline per attempt and retries with
// backoff on rate limits, server errors, transport errors and answers the
// caller cannot parse. A client follows no redirect (an answer 3xx is an
// error), so its credential only ever goes to its own endpoint, and an
// error answer's body appears in its error cut to MaxErrorBody bytes.
package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats of judge endpoints.
const (
	FormatOpenAI    = "openai"
	FormatAnthropic = "anthropic"
)

// Public endpoints used when Config.APIBase is empty.
const (
	DefaultOpenAIBase    = "https://api.openai.com/v1"
	DefaultAnthropicBase = "https://api.anthropic.com"
)

// MaxErrorBody bounds how much of an error answer's body an error quotes,
// in bytes: errors end up in policy events.
const MaxErrorBody = 512

// Config configures a Client.
type Config struct {
	// Model is the judge model.
	Model string
	// APIBase is the endpoint's base URL: for OpenAI the URL ending in /v1
	// (chat/completions is appended), for Anthropic the host URL
	// (/v1/messages is appended; a base ending in /v1 gets /messages).
	// Empty uses the provider's public API (DefaultBase). It must be an
	// http or https URL with a host.
	APIBase string
	// APIKey is sent as the credential; empty sends none.
	APIKey string
	// Format is FormatOpenAI or FormatAnthropic; empty picks Anthropic for
	// claude models or an anthropic base URL, OpenAI otherwise.
	Format string
	// Temperature of the judge's answers.
	Temperature float64
	// MaxTokens bounds the judge's answer.
	MaxTokens int
	// Timeout bounds each attempt; the caller's context bounds the whole.
	Timeout time.Duration
	// MaxRetries is how many times a failed attempt is retried.
	MaxRetries int
	// RetryDelay is the wait before the first retry; it doubles after each.
	RetryDelay time.Duration
}

// Client calls one judge model. It is safe for concurrent use.
type Client struct {
	cfg  Config
	url  string
	http *http.Client
}

// New returns a client for cfg; hc nil uses a default HTTP client. The
// client uses a copy of hc that follows no redirect.
func New(cfg Config, hc *http.Client) (*Client, error) {
	if cfg.Model == "" {
		return nil, errors.New("llm: model is required")
	}
	if cfg.Format == "" {
		cfg.Format = DefaultFormat(cfg.Model, cfg.APIBase)
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	noRedirect := &http.Client{}
	if hc != nil {
		*noRedirect = *hc
	}
	// A redirect would carry the credential (and the judged content) to
	// a host nobody configured: the 3xx answer is returned as it is and
	// attempt reports it.
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{cfg: cfg, http: noRedirect}
	base := DefaultBase(cfg.Format, cfg.APIBase)
	if _, err := ParseBase(base); err != nil {
		return nil, err
	}
	base = strings.TrimRight(base, "/")
	switch cfg.Format {
	case FormatOpenAI:
		c.url = base + "/chat/completions"
	case FormatAnthropic:
		if strings.HasSuffix(base, "/v1") {
			c.url = base + "/messages"
		} else {
			c.url = base + "/v1/messages"
		}
	default:
		return nil, fmt.Errorf("llm: format %q: want %q or %q", cfg.Format, FormatOpenAI, FormatAnthropic)
	}
	return c, nil
}

// DefaultBase returns apiBase, or the provider's public endpoint of format
// when apiBase is empty.
func DefaultBase(format, apiBase string) string {
	if apiBase != "" {
		return apiBase
	}
	if format == FormatAnthropic {
		return DefaultAnthropicBase
	}
	return DefaultOpenAIBase
}

// ParseBase parses an endpoint's base URL: an http or https URL with a
// host and without user information.
func ParseBase(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("llm: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("llm: base URL %q: want an http or https URL", base)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("llm: base URL %q: no host", base)
	}
	if u.User != nil {
		return nil, errors.New("llm: base URL: user information is not allowed (use the key settings)")
	}
	return u, nil
}

// Origin returns the scheme, host and port of u, the port explicit
// ("https://api.openai.com:443"): two URLs with the same origin reach the
// same server.
func Origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), port)
}

// DefaultFormat picks the endpoint format from the model name and base
// URL: Anthropic for claude models or an anthropic URL, else OpenAI.
func DefaultFormat(model, apiBase string) string {
	if strings.HasPrefix(strings.ToLower(model), "claude") || strings.Contains(strings.ToLower(apiBase), "anthropic") {
		return FormatAnthropic
	}
	return FormatOpenAI
}

// Config returns the client's configuration with defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Complete asks the judge: system is the instruction, prompt the question.
// accept checks the answer's text; an error from it counts as a failed
// attempt and is retried like a transport error. It returns the last
// accepted answer, or the last error once the retries are spent or ctx is
// done.
func (c *Client) Complete(ctx context.Context, system, prompt string, accept func(text string) error) (string, error) {
	delay := c.cfg.RetryDelay
	var lastErr error
	for attempt := 0; attempt <= c.cfg.MaxRetries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", fmt.Errorf("llm: %w (after %v)", ctx.Err(), lastErr)
			case <-t.C:
			}
			delay *= 2
		}
		text, retry, err := c.attempt(ctx, system, prompt)
		if err == nil && accept != nil {
			if err = accept(text); err != nil {
				err, retry = fmt.Errorf("llm: unusable answer: %w", err), true
			}
		}
		if err == nil {
			return text, nil
		}
		lastErr = err
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return "", lastErr
}

// attempt makes one call; retry reports whether a failure is transient.
func (c *Client) attempt(ctx context.Context, system, prompt string) (text string, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	body, err := c.requestBody(system, prompt)
	if err != nil {
		return "", false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", false, fmt.Errorf("llm: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.cfg.Format == FormatAnthropic {
		req.Header.Set("anthropic-version", "2023-06-01")
		if c.cfg.APIKey != "" {
			req.Header.Set("x-api-key", c.cfg.APIKey)
		}
	} else if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", true, fmt.Errorf("llm: call %s: %w", c.cfg.Model, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Neither the body nor the location is quoted: both come from
		// wherever the endpoint points.
		return "", false, fmt.Errorf("llm: %s answered %d, a redirect: judge endpoints must answer directly (redirects are not followed)", c.cfg.Model, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", true, fmt.Errorf("llm: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		transient := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return "", transient, fmt.Errorf("llm: %s answered %d: %s", c.cfg.Model, resp.StatusCode, truncate(string(data), MaxErrorBody))
	}
	text, err = c.answerText(data)
	if err != nil {
		return "", true, err
	}
	return text, false, nil
}

// requestBody builds the request in the endpoint's format.
func (c *Client) requestBody(system, prompt string) ([]byte, error) {
	var v any
	if c.cfg.Format == FormatAnthropic {
		v = map[string]any{
			"model": c.cfg.Model, "max_tokens": c.cfg.MaxTokens, "temperature": c.cfg.Temperature,
			"system":   system,
			"messages": []any{map[string]any{"role": "user", "content": prompt}},
		}
	} else {
		v = map[string]any{
			"model": c.cfg.Model, "max_tokens": c.cfg.MaxTokens, "temperature": c.cfg.Temperature,
			"messages": []any{
				map[string]any{"role": "system", "content": system},
				map[string]any{"role": "user", "content": prompt},
			},
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("llm: encode request: %w", err)
	}
	return b, nil
}

// answerText extracts the answer's text.
func (c *Client) answerText(data []byte) (string, error) {
	if c.cfg.Format == FormatAnthropic {
		var m struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			return "", fmt.Errorf("llm: parse answer: %w", err)
		}
		var sb strings.Builder
		for _, b := range m.Content {
			if b.Type == "text" {
				sb.WriteString(b.Text)
			}
		}
		return sb.String(), nil
	}
	var m struct {
		Choices []struct {
			Message struct {
				Content *string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return "", fmt.Errorf("llm: parse answer: %w", err)
	}
	if len(m.Choices) == 0 || m.Choices[0].Message.Content == nil {
		return "", errors.New("llm: answer has no content")
	}
	return *m.Choices[0].Message.Content, nil
}

// DecodeJSON decodes a JSON object from a judge's answer, tolerating a
// markdown code fence and text around the object.
func DecodeJSON(text string, v any) error {
	s := strings.TrimSpace(text)
	if i := strings.Index(s, "```"); i >= 0 {
		rest := s[i+3:]
		if nl := strings.IndexByte(rest, '\n'); nl >= 0 {
			rest = rest[nl+1:] // skip the language tag
		}
		if j := strings.Index(rest, "```"); j >= 0 {
			rest = rest[:j]
		}
		s = strings.TrimSpace(rest)
	}
	if start, end := strings.IndexByte(s, '{'), strings.LastIndexByte(s, '}'); start >= 0 && end > start {
		s = s[start : end+1]
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("judge answer is not the expected JSON: %w: %s", err, truncate(text, 200))
	}
	return nil
}

// truncate shortens s to at most n bytes, cut at a character boundary,
// with invalid UTF-8 replaced; "..." marks a cut.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
