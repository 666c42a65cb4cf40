// Package routes is the gateway's routing table: which upstream provider,
// and which upstream model, serves the model a client names. It loads and
// validates a routes file and answers look-ups; it does no I/O beyond
// reading that file.
//
// # File format
//
// A routes file is one YAML document of at most 1 MiB with two keys,
// both optional:
//
//	providers:
//	  claude: {kind: anthropic, base_url: https://api.anthropic.com, api_key_env: ANTHROPIC_API_KEY}
//	  local:  {kind: openai, base_url: http://127.0.0.1:11434/v1, headers: {x-team: a}}
//	routes:
//	  - {match: "claude-*", provider: claude}
//	  - {match: "gpt-oss*", provider: local, model: "gpt-oss:20b"}
//
// Decoding is strict: an unknown key, a key given twice or a value of the
// wrong type is an error, and so is a second YAML document.
//
// providers maps a name (letters, digits, '.', '_' and '-', starting with
// a letter or digit, at most 64 bytes; at most 256 providers) to:
//
//   - kind (required): the API the provider speaks, "openai" (Chat
//     Completions; the base URL ends in /v1) or "anthropic" (Messages; the
//     base URL is the host).
//   - base_url (required): an http:// or https:// URL with a host, and
//     without user information, query or fragment.
//   - api_key_env (optional): the name of the environment variable
//     ([A-Za-z_][A-Za-z0-9_]*) holding the gateway's key for the provider.
//     The variable must be set and non-empty when the file is loaded. A key
//     never appears in the file itself, nor in any error or printed table.
//   - headers (optional): extra request headers sent to the provider, name
//     to value. Names must be valid HTTP field names, and values valid
//     field values. Hop-by-hop headers (Connection, Keep-Alive,
//     Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE,
//     Trailer, Transfer-Encoding, Upgrade), Host, Content-Length,
//     Content-Type, Content-Encoding and Accept-Encoding (the gateway sets
//     them) and Authorization and X-Api-Key (keys come only through
//     api_key_env) are refused; so are two names that differ only in case.
//
// routes is a list (at most 1024 entries; it may be empty) of:
//
//   - match (required): a glob over the whole model name the client sends,
//     in the syntax of path.Match: '*' matches any run of characters but
//     '/', '?' any one character but '/', [a-z] a class, '\' escapes.
//     "claude-*" matches claude-sonnet-4-5 but not org/claude-x; write
//     "*/*" for names with one slash.
//   - provider (required): the name of a provider above.
//   - model (optional): the model sent upstream instead of the client's.
//
// Patterns and models are at most 256 bytes, without control characters.
//
// # Look-ups
//
// Table.Route tries the routes in order and the first whose pattern
// matches wins; no match leaves the request to the gateway's default
// provider for its format. Table.Models lists the names the table can
// serve, for GET /v1/models.
//
// # Credentials
//
// Route.Credential decides what credential goes upstream. A client's
// credential is never sent to a provider other than the one it was meant
// for (its format's default provider): a provider's configured key is sent
// whenever it is set; without one, in passthrough mode (the gateway has no
// client key of its own), the client's credential passes only to its own
// default provider, a route to a provider of another kind is refused, and
// any other route sends no key.
package routes
