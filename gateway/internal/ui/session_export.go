package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	cpv1 "luthien.dev/gen/luthien/controlplane/v1"
)

// sessionExportTurn is one line of a JSONL export: a call with its bodies and
// policy events.
type sessionExportTurn struct {
	CallID     string `json:"call_id"`
	Time       string `json:"time"`
	Model      string `json:"model"`
	Format     string `json:"format"`
	Status     int32  `json:"status"`
	Intervened bool   `json:"intervened"`
	Preflight  bool   `json:"preflight,omitempty"`
	Error      string `json:"error,omitempty"`
	// Request as received and response as sent to the client.
	Request  map[string]any `json:"request"`
	Response map[string]any `json:"response"`
	// The other versions, when a policy changed them.
	RequestFinal     map[string]any       `json:"request_final,omitempty"`
	ResponseOriginal map[string]any       `json:"response_original,omitempty"`
	PolicyEvents     []sessionExportEvent `json:"policy_events"`
}

// sessionExportEvent is a policy event of an export.
type sessionExportEvent struct {
	Type    string         `json:"type"`
	Time    string         `json:"time"`
	Payload map[string]any `json:"payload"`
}

// exportSession downloads a session as JSONL (one call per line) or as a
// Markdown transcript.
func (u *UI) exportSession(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "jsonl" && format != "md" {
		http.Error(w, "format must be jsonl or md", http.StatusBadRequest)
		return
	}
	id := r.PathValue("id")
	sum, turns, err := u.loadSession(r.Context(), id)
	if err != nil {
		code, msg := sessionStatusOf(err)
		http.Error(w, msg, code)
		return
	}
	var body []byte
	contentType := "application/x-ndjson"
	if format == "jsonl" {
		body, err = exportSessionJSONL(turns)
		if err != nil {
			u.cfg.Log.ErrorContext(r.Context(), "exporting a session", "session_id", id, "err", err)
			http.Error(w, "export failed", http.StatusInternalServerError)
			return
		}
	} else {
		contentType = "text/markdown; charset=utf-8"
		body = exportSessionMarkdown(id, sum, buildTranscript(turns))
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="session-%s.%s"`, exportFileName(id), format))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

// exportSessionJSONL writes one JSON object per call, oldest first.
func exportSessionJSONL(turns []txTurnData) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, t := range turns {
		c := t.Call
		line := sessionExportTurn{
			CallID: c.GetCallId(), Time: exportTime(c.GetStartedAt().AsTime()), Model: c.GetModel(),
			Format: txFormatName(c.GetFormat(), txIsOpenAI(c.GetFormat(), t.Request, t.Response)), Status: c.GetStatus(),
			Intervened: c.GetIntervened(), Preflight: t.Request != nil && txIsPreflight(t.Request), Error: c.GetError(),
			Request: t.Request, Response: t.Response, RequestFinal: t.RequestFinal, ResponseOriginal: t.ResponseOriginal,
			PolicyEvents: []sessionExportEvent{},
		}
		for _, ev := range t.PolicyEvents {
			line.PolicyEvents = append(line.PolicyEvents, sessionExportEvent{Type: ev.GetEventType(),
				Time: exportTime(ev.GetTime().AsTime()), Payload: ev.GetPayload().AsMap()})
		}
		if err := enc.Encode(line); err != nil {
			return nil, fmt.Errorf("export call %s: %w", c.GetCallId(), err)
		}
	}
	return buf.Bytes(), nil
}

// exportSessionMarkdown writes the transcript as Markdown: a section per turn,
// who speaks in bold, tool calls and results in fenced blocks, policy
// events as quotes. Recorded text never closes a fence it is in.
func exportSessionMarkdown(id string, sum *cpv1.SessionSummary, t *transcript) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Session %s\n\n", mdInlineCode(id))
	if sum != nil {
		fmt.Fprintf(&b, "%d calls, %d with policy interventions; models: %s; from %s to %s.\n",
			sum.GetTurns(), sum.GetInterventions(), strings.Join(sum.GetModels(), ", "),
			exportTime(sum.GetFirstActivity().AsTime()), exportTime(sum.GetLastActivity().AsTime()))
	}
	for _, tv := range t.Turns {
		if tv.Preflight {
			fmt.Fprintf(&b, "\n_Preflight probe (max_tokens 1), %s, call %s._\n", tv.Model, mdInlineCode(tv.CallID))
			continue
		}
		fmt.Fprintf(&b, "\n## Turn %d\n\n_%s · %s · call %s · status %d_\n", tv.N, exportTime(tv.Started.AsTime()),
			tv.Model, mdInlineCode(tv.CallID), tv.Status)
		mdSide(&b, tv.Final)
		if tv.Original != nil && tv.Original.Answer != nil {
			b.WriteString("\n**Assistant (original, before policies)**\n")
			mdMessage(&b, tv.Original.Answer, false)
		}
		for _, a := range tv.Annotations {
			b.WriteString("\n")
			mdQuote(&b, "**Policy** "+mdInlineCode(a.Type))
			for _, f := range a.Fields {
				mdQuote(&b, f.Key+": "+f.Value)
			}
		}
		if tv.Error != "" {
			b.WriteString("\n**Error**\n\n")
			b.WriteString(mdFence(tv.Error, ""))
		}
	}
	return []byte(b.String())
}

// mdSide writes a turn's new messages and its answer.
func mdSide(b *strings.Builder, s *txSide) {
	if s.System != "" {
		b.WriteString("\n**System**\n\n")
		b.WriteString(mdFence(s.System, "text"))
	}
	for _, m := range s.Messages {
		mdMessage(b, m, true)
	}
	if s.Answer != nil {
		mdMessage(b, s.Answer, true)
	}
}

// mdMessage writes a message: its speaker (when heading) and its parts.
func mdMessage(b *strings.Builder, m *txMsg, heading bool) {
	if heading {
		fmt.Fprintf(b, "\n**%s**\n", mdSpeaker(m.Role))
	}
	for _, p := range m.Parts {
		switch p.Kind {
		case blockText:
			b.WriteString(mdText(p.Text))
		case blockThinking:
			b.WriteString("\n_Thinking_\n\n")
			b.WriteString(mdFence(p.Text, "text"))
		case "tool":
			fmt.Fprintf(b, "\n**Tool call** %s (%s)\n\n", mdInlineCode(p.Tool.Name), mdInlineCode(p.Tool.ID))
			b.WriteString(mdFence(p.Tool.Args, "json"))
			if res := p.Tool.Result; res != nil {
				mdResult(b, res)
			}
		case "tool-result":
			mdResult(b, p.Result)
		case "tool-result-ref":
			fmt.Fprintf(b, "\n_Result of %s (%s), shown with turn %d._\n", mdInlineCode(p.Result.Of.Name),
				mdInlineCode(p.Result.ID), p.Result.Of.Turn)
		default:
			fmt.Fprintf(b, "\n_[%s]_\n", p.Text)
		}
	}
}

// mdText is a message's text as Markdown: as it is (models write
// Markdown), unless it opens a code block it does not close, which would
// swallow the rest of the transcript: then fenced.
func mdText(text string) string {
	open := 0
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimLeft(line, " ")
		if len(line)-len(l) <= 3 && (strings.HasPrefix(l, "```") || strings.HasPrefix(l, "~~~")) {
			open++
		}
	}
	if open%2 == 1 {
		return "\n" + mdFence(text, "text")
	}
	return "\n" + strings.TrimRight(text, "\n") + "\n"
}

// mdResult writes a tool result.
func mdResult(b *strings.Builder, r *txResult) {
	label := "Tool result"
	if r.IsError {
		label += " (error)"
	}
	fmt.Fprintf(b, "\n**%s** %s\n\n", label, mdInlineCode(r.ID))
	b.WriteString(mdFence(r.Text, "text"))
}

// mdSpeaker names a role for the Markdown transcript.
func mdSpeaker(role string) string {
	switch role {
	case "user":
		return "User"
	case "assistant":
		return "Assistant"
	case "system":
		return "System"
	case "tool":
		return "Tool"
	}
	return "Other"
}

// mdFence puts text in a fenced code block whose fence is longer than any
// run of backticks in the text, so the text cannot end the block.
func mdFence(text, info string) string {
	f := strings.Repeat("`", max(3, mdLongestRun(text, '`')+1))
	text = strings.TrimSuffix(text, "\n")
	return f + info + "\n" + text + "\n" + f + "\n"
}

// mdInlineCode puts text in a code span that the text cannot close: its
// backtick run is longer than any in the text, with spaces against
// backticks at the ends. Line breaks become spaces.
func mdInlineCode(text string) string {
	text = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(text)
	if text == "" {
		return "``"
	}
	f := strings.Repeat("`", mdLongestRun(text, '`')+1)
	if strings.HasPrefix(text, "`") || strings.HasSuffix(text, "`") {
		text = " " + text + " "
	}
	return f + text + f
}

// mdLongestRun is the length of the longest run of c in s.
func mdLongestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// mdQuote writes text as a Markdown quote, every line of it.
func mdQuote(b *strings.Builder, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString("> " + line + "  \n")
	}
}

// exportFileName makes a session id safe in a file name: letters, digits, dot,
// dash and underscore are kept, anything else becomes an underscore.
func exportFileName(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.' && b.Len() > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	if b.Len() == 0 {
		return "session"
	}
	return b.String()
}

// exportTime formats a time for exports.
func exportTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
