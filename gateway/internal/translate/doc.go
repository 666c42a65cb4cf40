// Package translate converts between the OpenAI Chat Completions and the
// Anthropic Messages APIs: requests, complete responses, upstream errors
// and SSE streams, in both directions. It is a pure library: it does no
// I/O beyond the writers it is given.
//
// What maps (OpenAI ⇄ Anthropic):
//
//   - system and developer messages ⇄ top-level system (string or text
//     blocks); user and assistant roles; consecutive messages of one role
//     are merged, and a conversation that starts with the assistant gets a
//     "." user turn first, as Anthropic requires.
//   - text parts ⇄ text blocks; image_url parts (data: URLs ⇄ base64
//     sources, http(s) URLs ⇄ url sources).
//   - tools (function definitions ⇄ tools with input_schema), tool_choice
//     (auto, none, required, named ⇄ auto, none, any, tool) and
//     parallel_tool_calls false ⇄ disable_parallel_tool_use.
//   - assistant tool_calls ⇄ tool_use blocks (arguments JSON string ⇄
//     input object); tool messages ⇄ tool_result blocks (consecutive
//     results merged into one user message on the Anthropic side).
//   - stop ⇄ stop_sequences; max_tokens or max_completion_tokens ⇄
//     max_tokens (DefaultMaxTokens when OpenAI gives neither);
//     temperature (clamped to Anthropic's 0..1); top_p; user ⇄
//     metadata.user_id; stream (an Anthropic stream asks OpenAI for
//     stream_options.include_usage, since Anthropic streams always carry
//     usage).
//   - responses: text (an OpenAI refusal becomes text), tool calls, ids,
//     model, finish reasons (end_turn ⇄ stop, max_tokens ⇄ length,
//     tool_use ⇄ tool_calls, stop_sequence → stop, refusal ⇄
//     content_filter, model_context_window_exceeded → length; a tool stop
//     reason without a tool call becomes end_turn ⇄ stop), usage with
//     cache tokens (prompt_tokens = input + cache read + cache creation,
//     cached_tokens = cache read; back, input = prompt_tokens −
//     cached_tokens, cache read = cached_tokens).
//   - errors: the error type and message, with the status (Anthropic's 529
//     becomes 503 for OpenAI clients); in streams, an error event ⇄ an
//     error chunk, type and code mapped the same way.
//   - streams: through the canonical model, with the source dialect's
//     Decoder and the target dialect's Encoder (see Stream). OpenAI's
//     usage-only last chunk ⇄ the message_delta's usage (input, cache and
//     output tokens); [DONE] ⇄ message_stop.
//
// What is dropped, and reported as a Dropped entry (never silently):
//
//   - OpenAI: n, logprobs, top_logprobs, presence_penalty,
//     frequency_penalty, logit_bias, response_format, seed, service_tier,
//     store, metadata, modalities, audio, prediction, reasoning_effort,
//     web_search_options, functions and function_call, message names,
//     image detail, audio and file parts, tools[].function.strict, any
//     field not listed above; invalid tool call argument JSON (sent as
//     {}); refusal text in requests; choices after the first.
//   - Anthropic: top_k, thinking, service_tier, container, mcp_servers,
//     context_management, output_config, cache_control, citations,
//     is_error on tool results (the content is kept), images and
//     documents inside tool results, document and other non-text,
//     non-image blocks, server tools, thinking and redacted_thinking
//     blocks (in requests, responses and streams), any field not listed
//     above.
//
// Defaults applied are reported the same way: max_tokens set to
// DefaultMaxTokens, a temperature clamped to 1, a user turn inserted.
package translate
