// Shared by openai.mjs and anthropic.mjs: the command line, the tool both
// scripts define, and the one JSON line each prints.
import { parseArgs } from 'node:util';

// args reads the command line:
//   --base-url URL   the gateway (the script adds /v1 where its SDK needs it)
//   --model NAME     the model the client asks for
//   --case create|stream
// and the API key from SDK_API_KEY.
export function args() {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string' },
      model: { type: 'string' },
      case: { type: 'string', default: 'create' },
    },
  });
  const key = process.env.SDK_API_KEY;
  if (!values['base-url'] || !values.model || !key) {
    throw new Error('usage: SDK_API_KEY=KEY node SCRIPT --base-url URL --model NAME --case create|stream');
  }
  if (values.case !== 'create' && values.case !== 'stream') {
    throw new Error(`unknown case ${JSON.stringify(values.case)}: create or stream`);
  }
  return { baseURL: values['base-url'], model: values.model, stream: values.case === 'stream', key };
}

// The tool both clients offer the model.
export const tool = {
  name: 'Bash',
  description: 'Runs a shell command and returns its output.',
  schema: {
    type: 'object',
    properties: { command: { type: 'string', description: 'the command line' } },
    required: ['command'],
  },
};

export const prompt = 'List the files in the current directory.';

// recordingFetch is a fetch that remembers the gateway's X-Call-ID of the
// last response, so that the test can find the call's record.
export function recordingFetch(seen) {
  return async (input, init) => {
    const resp = await fetch(input, init);
    seen.callID = resp.headers.get('x-call-id') ?? '';
    return resp;
  };
}

// print writes the result as one JSON line on stdout.
export function print(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

// printError reports an error the SDK raised: its class (the SDK's own, e.g.
// RateLimitError), the HTTP status and the message. It exits 0: an error
// the SDK raised is a result the test checks.
export function printError(err, seen) {
  print({
    call_id: seen.callID ?? '',
    error: {
      class: err?.constructor?.name ?? typeof err,
      status: typeof err?.status === 'number' ? err.status : 0,
      type: err?.type ?? '',
      message: String(err?.message ?? err),
    },
  });
}

// parseArguments parses a tool call's JSON arguments; what does not parse
// is reported as such.
export function parseArguments(text) {
  try {
    return { arguments: JSON.parse(text) };
  } catch (err) {
    return { arguments_raw: text, arguments_error: String(err.message) };
  }
}
