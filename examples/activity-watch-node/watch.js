#!/usr/bin/env node
// Watches a Luthien control plane's activity feed
// (luthien.controlplane.v1.ActivityService/StreamActivity) and prints every
// event as one line of JSON on stdout, until interrupted or the stream ends.
//
// The service definitions are loaded from the .proto files of this
// repository (proto/), not from generated code.
//
// Settings (environment):
//   LUTHIEN_CONTROL_PLANE        host:port of the control plane (127.0.0.1:9000)
//   LUTHIEN_CONTROL_PLANE_TOKEN  the link token, sent as `authorization: Bearer`
//   LUTHIEN_CONTROL_PLANE_CA     PEM CA file: dial with TLS instead of plaintext
//   LUTHIEN_CONTROL_PLANE_CERT, LUTHIEN_CONTROL_PLANE_KEY
//                                PEM client certificate and key (mutual TLS)
//   LUTHIEN_PROTO_DIR            the proto/ directory (../../proto from here)
// Filters (flags): --call-id ID, --session-id ID, --type PREFIX[,PREFIX...]
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function main() {
  const { values: flags } = parseArgs({
    options: {
      'call-id': { type: 'string', default: '' },
      'session-id': { type: 'string', default: '' },
      type: { type: 'string', default: '' },
    },
  });
  const env = process.env;
  const protoDir = env.LUTHIEN_PROTO_DIR || path.join(__dirname, '..', '..', 'proto');
  const target = env.LUTHIEN_CONTROL_PLANE || '127.0.0.1:9000';

  const definition = protoLoader.loadSync('luthien/controlplane/v1/history.proto', {
    includeDirs: [protoDir],
    keepCase: true, // the proto field names, as the REST API and the SSE feed
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const v1 = grpc.loadPackageDefinition(definition).luthien.controlplane.v1;
  const client = new v1.ActivityService(target, channelCredentials(env), {
    'grpc.max_receive_message_length': 64 << 20,
  });

  // Metadata rather than call credentials: grpc-js sends call credentials
  // over TLS only, and a loopback control plane is often plaintext.
  const md = new grpc.Metadata();
  if (env.LUTHIEN_CONTROL_PLANE_TOKEN) {
    md.set('authorization', `Bearer ${env.LUTHIEN_CONTROL_PLANE_TOKEN}`);
  }
  const request = {
    call_id: flags['call-id'],
    session_id: flags['session-id'],
    event_type_prefixes: flags.type ? flags.type.split(',') : [],
    // The payload as the JSON text the control plane keeps, rather than a
    // google.protobuf.Struct tree.
    payload_as_json: true,
  };

  const call = client.StreamActivity(request, md);
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      interrupted = true;
      call.cancel();
    });
  }
  call.on('data', (msg) => {
    if (Number(msg.dropped) > 0) {
      process.stderr.write(`activity-watch: ${msg.dropped} events dropped (reading too slowly)\n`);
    }
    if (msg.event) {
      process.stdout.write(`${JSON.stringify(eventLine(msg.event))}\n`);
    }
  });
  call.on('error', (err) => {
    if (interrupted && err.code === grpc.status.CANCELLED) {
      return;
    }
    process.stderr.write(`activity-watch: ${target}: ${err.message}\n`);
    process.exitCode = 1;
  });
  call.on('end', () => client.close());
}

// channelCredentials is TLS when a CA is given (mutual with a client
// certificate), plaintext otherwise.
function channelCredentials(env) {
  if (!env.LUTHIEN_CONTROL_PLANE_CA) {
    return grpc.credentials.createInsecure();
  }
  const read = (name) => (env[name] ? fs.readFileSync(env[name]) : null);
  return grpc.credentials.createSsl(
    read('LUTHIEN_CONTROL_PLANE_CA'),
    read('LUTHIEN_CONTROL_PLANE_KEY'),
    read('LUTHIEN_CONTROL_PLANE_CERT'),
  );
}

// eventLine turns a CallEvent into the object printed for it: its time as
// RFC 3339 and its payload as JSON.
function eventLine(ev) {
  const line = {
    time: timestamp(ev.time),
    call_id: ev.call_id || '',
    session_id: ev.session_id || '',
    event_type: ev.event_type || '',
  };
  const text = ev.payload_json && ev.payload_json.length > 0 ? ev.payload_json.toString('utf8') : '';
  if (text) {
    try {
      line.payload = JSON.parse(text);
    } catch {
      line.payload_text = text;
    }
  }
  return line;
}

function timestamp(ts) {
  if (!ts) {
    return '';
  }
  const ms = Number(ts.seconds || 0) * 1000 + Math.floor((ts.nanos || 0) / 1e6);
  return new Date(ms).toISOString();
}

main();
