// Calls the gateway's Messages endpoint with the official Anthropic SDK, a
// tool defined, and prints one JSON line with what the SDK parsed:
//   {"call_id", "text", "tool_calls": [{"id", "name", "arguments"}],
//    "stop": stop_reason, "usage": the SDK's usage object}
// or {"call_id", "error": {"class", "status", "type", "message"}}.
// --case create: messages.create; stream: messages.stream and its
// finalMessage().
import Anthropic from '@anthropic-ai/sdk';
import { args, tool, prompt, recordingFetch, print, printError } from './common.mjs';

const a = args();
const seen = {};
const client = new Anthropic({
  apiKey: a.key,
  baseURL: a.baseURL.replace(/\/$/, ''),
  maxRetries: 0,
  timeout: 30_000,
  fetch: recordingFetch(seen),
});

const body = {
  model: a.model,
  max_tokens: 256,
  messages: [{ role: 'user', content: prompt }],
  tools: [{ name: tool.name, description: tool.description, input_schema: tool.schema }],
};

try {
  const message = a.stream ? await client.messages.stream(body).finalMessage() : await client.messages.create(body);
  print({
    call_id: seen.callID,
    text: message.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
    tool_calls: message.content
      .filter((b) => b.type === 'tool_use')
      .map((b) => ({ id: b.id, name: b.name, arguments: b.input })),
    stop: message.stop_reason ?? '',
    usage: message.usage ?? null,
  });
} catch (err) {
  printError(err, seen);
}
