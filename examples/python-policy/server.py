#!/usr/bin/python3
"""A Luthien policy server in Python.

It implements the policy part of the control-plane contract
(luthien.controlplane.v1.PolicyService), which the control plane calls for
a policy of class `external`:

- ApplyRequestPolicies refuses (403) a request whose text contains one of
  the --block-word words, whole words, any case;
- ApplyResponsePolicy and StreamChunkPolicy rewrite text: each --rewrite
  FROM=TO replaces FROM with TO in complete responses and in each streamed
  text delta. Every other streamed event goes back as its passthrough_seq,
  so the client receives upstream's exact bytes for it.

Every call must carry `authorization: Bearer <token>`, the token being the
value of the environment variable --token-env names.

Run it with the generated stubs on the path:

    PYTHONPATH=gen/python LUTHIEN_EXTERNAL_POLICY_TOKEN=... \\
        /usr/bin/python3 examples/python-policy/server.py \\
        --block-word forbidden --rewrite hello=goodbye
"""

import argparse
import hmac
import json
import logging
import os
import re
import signal
import sys
from concurrent import futures

import grpc

from luthien.controlplane.v1 import events_pb2, policy_pb2, policy_pb2_grpc

log = logging.getLogger("python-policy")

# One message to or from the control plane: request bodies travel whole.
MAX_MESSAGE_BYTES = 64 << 20


def request_texts(body):
    """Returns the texts the model reads in a request body (JSON in the
    client's format, OpenAI Chat Completions or Anthropic Messages): the
    system prompt and every message's content, at any depth."""
    try:
        request = json.loads(body)
    except ValueError:
        return []
    if not isinstance(request, dict):
        return []
    texts = []

    def walk(value):
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key in ("text", "content"):
                if key in value:
                    walk(value[key])

    walk(request.get("system"))
    for message in request.get("messages") or []:
        walk(message)
    return texts


class Policy(policy_pb2_grpc.PolicyServiceServicer):
    """The policy: blocks requests by word, rewrites response text."""

    def __init__(self, token, block_words, rewrites):
        self.expected = ("Bearer " + token).encode() if token else None
        self.block = [(w, re.compile(r"(?<!\w)" + re.escape(w) + r"(?!\w)", re.IGNORECASE)) for w in block_words]
        self.rewrites = rewrites

    def authorize(self, context):
        """Aborts the call unless it carries the token."""
        if self.expected is None:
            return
        got = dict(context.invocation_metadata()).get("authorization", "")
        if not hmac.compare_digest(got.encode(), self.expected):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    def rewrite(self, text):
        """Applies the rewrites to a text, in order."""
        for old, new in self.rewrites:
            text = text.replace(old, new)
        return text

    def ApplyRequestPolicies(self, request, context):
        self.authorize(context)
        for text in request_texts(request.body):
            for word, pattern in self.block:
                if pattern.search(text):
                    log.info("blocked call_id=%s word=%r", request.call_id, word)
                    return policy_pb2.ApplyRequestPoliciesResponse(reject=policy_pb2.Reject(
                        http_status=403, error_type="permission_error",
                        message=f"Request blocked by policy: it mentions {word!r}."))
        # continue without a body: the request goes upstream unchanged.
        return policy_pb2.ApplyRequestPoliciesResponse(**{"continue": policy_pb2.Continue()})

    def ApplyResponsePolicy(self, request, context):
        self.authorize(context)
        message = events_pb2.Message()
        message.CopyFrom(request.response)
        changed = False
        for block in message.content:
            if block.WhichOneof("block") == "text":
                text = self.rewrite(block.text.text)
                if text != block.text.text:
                    block.text.text = text
                    changed = True
        if not changed:
            # No response: the gateway returns upstream's bytes unchanged.
            return policy_pb2.ApplyResponsePolicyResponse()
        return policy_pb2.ApplyResponsePolicyResponse(response=message)

    def StreamChunkPolicy(self, request_iterator, context):
        # A text split across two deltas is not rewritten: a policy that
        # must catch it holds back the end of each delta that could begin
        # a match and releases it with the next one.
        self.authorize(context)
        for msg in request_iterator:
            kind = msg.WhichOneof("msg")
            if kind == "start":
                log.debug("stream call_id=%s", msg.start.call_id)
            elif kind == "event":
                yield policy_pb2.StreamChunkPolicyResponse(outputs=[self.stream_output(msg.event)])
            elif kind == "end":
                return  # closing the stream answers the end

    def stream_output(self, event):
        """The output for one streamed event: a rewritten text delta (with
        the input's seq, so the gateway re-encodes it on upstream's event),
        or the input unchanged, by its seq."""
        if event.WhichOneof("event") == "content_block_delta" and event.content_block_delta.WhichOneof("delta") == "text":
            text = self.rewrite(event.content_block_delta.text.text)
            if text != event.content_block_delta.text.text:
                out = events_pb2.StreamEvent()
                out.CopyFrom(event)
                out.content_block_delta.text.text = text
                return policy_pb2.StreamOutput(event=out)
        if event.seq == 0:
            # Created by a policy before this one in a chain: it has no
            # seq to pass through by, so it goes back whole.
            return policy_pb2.StreamOutput(event=event)
        return policy_pb2.StreamOutput(passthrough_seq=event.seq)


def parse_rewrite(spec):
    old, sep, new = spec.partition("=")
    if not sep or not old:
        raise argparse.ArgumentTypeError(f"want FROM=TO with a non-empty FROM, got {spec!r}")
    return old, new


def main(argv=None):
    parser = argparse.ArgumentParser(description="A Luthien policy server: blocks requests by word, rewrites response text.")
    parser.add_argument("--listen", default="127.0.0.1:50061", help="address to serve on, host:port (port 0: any free port)")
    parser.add_argument("--token-env", default="LUTHIEN_EXTERNAL_POLICY_TOKEN",
                        help="environment variable holding the bearer token every call must carry")
    parser.add_argument("--no-token", action="store_true", help="accept calls without a token (loopback testing only)")
    parser.add_argument("--block-word", action="append", default=[], metavar="WORD",
                        help="refuse requests whose text contains WORD (whole word, any case); repeatable")
    parser.add_argument("--rewrite", action="append", default=[], type=parse_rewrite, metavar="FROM=TO",
                        help="replace FROM with TO in response text; repeatable, applied in order")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve TLS (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--workers", type=int, default=32, help="calls served at once (each open stream holds one)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")

    token = os.environ.get(args.token_env, "")
    if not token and not args.no_token:
        parser.error(f"${args.token_env} is not set (or pass --no-token)")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers), options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ])
    policy_pb2_grpc.add_PolicyServiceServicer_to_server(Policy(token, args.block_word, args.rewrite), server)
    if args.tls_cert:
        with open(args.tls_cert, "rb") as cert, open(args.tls_key, "rb") as key:
            creds = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(args.listen, creds)
    else:
        port = server.add_insecure_port(args.listen)
    if port == 0:
        parser.error(f"cannot listen on {args.listen}")
    server.start()
    host = args.listen.rpartition(":")[0]
    log.info("listening addr=%s:%d tls=%s", host, port, bool(args.tls_cert))

    def stop(signum, frame):
        log.info("stopping")
        server.stop(grace=5)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
