// Calls the gateway's Chat Completions endpoint with the official OpenAI
// SDK, a tool defined, and prints one JSON line with what the SDK parsed:
//   {"call_id", "text", "tool_calls": [{"id", "name", "arguments"}],
//    "stop": finish_reason, "usage": the SDK's usage object}
// or {"call_id", "error": {"class", "status", "type", "message"}}.
// --case create: chat.completions.create; stream: chat.completions.stream
// and its finalChatCompletion().
import OpenAI from 'openai';
import { args, tool, prompt, recordingFetch, print, printError, parseArguments } from './common.mjs';

const a = args();
const seen = {};
const client = new OpenAI({
  apiKey: a.key,
  baseURL: a.baseURL.replace(/\/$/, '') + '/v1',
  maxRetries: 0,
  timeout: 30_000,
  fetch: recordingFetch(seen),
});

const body = {
  model: a.model,
  messages: [{ role: 'user', content: prompt }],
  tools: [{ type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.schema } }],
};

try {
  let completion;
  if (a.stream) {
    const stream = client.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
    completion = await stream.finalChatCompletion();
  } else {
    completion = await client.chat.completions.create(body);
  }
  const choice = completion.choices[0];
  print({
    call_id: seen.callID,
    choices: completion.choices.length,
    text: choice?.message?.content ?? '',
    tool_calls: (choice?.message?.tool_calls ?? []).map((tc) => ({
      id: tc.id,
      name: tc.function.name,
      ...parseArguments(tc.function.arguments),
    })),
    stop: choice?.finish_reason ?? '',
    usage: completion.usage ?? null,
  });
} catch (err) {
  printError(err, seen);
}
