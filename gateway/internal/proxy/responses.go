package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"luthien.dev/canon/jsonx"
	"luthien.dev/gateway/internal/openai"
	"luthien.dev/gateway/internal/translate"
)

// The OpenAI Responses API (POST /v1/responses) is served as a chat call:
// the request is translated to Chat Completions at the edge and runs
// through the chat endpoint's policed handler — policies, routing (to an
// Anthropic provider too, through the chat⇄messages translation), the
// record — and the chat answer is translated back as it comes: a
// completion to a Response object, chunks to Responses events, errors
// as they are (both APIs share the error format). The gateway keeps no
// state: requests that need stored responses are refused (docs/RESPONSES.md).

// responsesPath is the path of the Responses API.
const responsesPath = "/v1/responses"

// responses serves POST /v1/responses.
func (p *Proxy) responses() http.Handler {
	d := openai.Dialect{}
	chat := p.policed(d)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := matchPath(r.URL.EscapedPath()); err != nil {
			WriteError(w, d, http.StatusBadRequest, "invalid_request_error", err.Error())
			return
		}
		if r.URL.EscapedPath() != responsesPath {
			WriteError(w, d, http.StatusNotFound, "", "no route for "+r.Method+" "+r.URL.Path)
			return
		}
		body, ok := p.acceptPost(w, r, d)
		if !ok {
			return
		}
		chatBody, dropped, err := translate.ResponsesToChat(body)
		if err != nil {
			writeResponsesError(w, err)
			return
		}
		rw := &responsesWriter{w: w, echo: translate.NewResponsesEcho(body), header: http.Header{}, p: p, r: r}
		edge := &clientEdge{request: body, dropped: droppedText(dropped)}
		chat.ServeHTTP(rw, chatRequest(r.WithContext(context.WithValue(r.Context(), clientEdgeKey{}, edge)), chatBody))
		rw.finish()
	})
}

// clientEdge is what a call's record keeps of a client format translated
// at the edge (the Responses API): the request as the client sent it
// (request.client) and what the translation could not carry.
type clientEdge struct {
	request []byte
	dropped []string
}

// clientEdgeKey carries a *clientEdge in a request's context.
type clientEdgeKey struct{}

// noteClientEdge takes what r's edge translation recorded into c.
func noteClientEdge(r *http.Request, c *call) {
	if e, ok := r.Context().Value(clientEdgeKey{}).(*clientEdge); ok {
		c.trace.RequestClient = e.request
		c.trace.Dropped = append(c.trace.Dropped, e.dropped...)
	}
}

// chatRequest is the client's request as a chat call: the chat path and
// body, the client's headers, query and context.
func chatRequest(r *http.Request, body []byte) *http.Request {
	cr := r.Clone(r.Context())
	cr.URL.Path, cr.URL.RawPath = "/v1/chat/completions", ""
	cr.RequestURI = cr.URL.RequestURI()
	cr.Body = io.NopCloser(bytes.NewReader(body))
	cr.GetBody = nil
	cr.ContentLength = int64(len(body))
	cr.Header.Del("Content-Length")
	return cr
}

// writeResponsesError answers a request the translation refuses: 400 in
// the OpenAI error format, naming the field at fault.
func writeResponsesError(w http.ResponseWriter, err error) {
	msg, param := err.Error(), (*string)(nil)
	var re *translate.RequestError
	if errors.As(err, &re) {
		msg = re.Message
		if re.Param != "" {
			param = &re.Param
		}
	}
	type detail struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	b, _ := jsonx.Marshal(struct {
		Error detail `json:"error"`
	}{detail{Message: msg, Type: "invalid_request_error", Param: param}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(b)
}
