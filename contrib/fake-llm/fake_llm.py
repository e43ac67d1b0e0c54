#!/usr/bin/python3
"""fake_llm.py -- an offline stand-in for an LLM provider, for pgwarden's tests and demo.

It speaks just enough of two real APIs for pgwarden's llm module to be exercised end to end
without a network or a model:

  POST /v1/chat/completions, /chat/completions   OpenAI-shaped (also what Ollama, vLLM and
                                                 llama.cpp servers speak)
  POST /v1/messages, /messages                   Anthropic-shaped

Answers come from a script: a JSON list of rules, tried in order against the question the
request asks (see question_of). The first rule that matches decides the
answer; when none does, the default reply says the schema cannot answer. A rule can also
make the server misbehave the way real providers do -- slow, rate limited, failing,
answering malformed JSON -- so the client's timeouts, retries and error messages can be
tested.

Control endpoints (not part of either API):
  POST /_script   replace the rules (body: a list of rules, or {"rules": [...], "default": "..."});
                  counters start again from zero
  GET  /_log      every API request received so far, oldest first, as a JSON list
  POST /_reset    clear the log and the rules' counters (the rules stay)

The log never holds an API key: for each request it records only whether a key was sent
and whether it equals --expect-key.

Python standard library only; run with /usr/bin/python3. A ThreadingHTTPServer serves each
connection on its own thread, so many slow answers are in flight at once.
"""

import argparse
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_REPLY = "I cannot answer that from this schema."

# Everything mutable lives behind one lock: rules, their counters and the log.
state_lock = threading.Lock()
state = {"rules": [], "default": DEFAULT_REPLY, "counts": [], "log": []}
expect_key = None


def load_script(doc):
    """Accept a list of rules or {"rules": [...], "default": "..."}; raise ValueError if neither."""
    if isinstance(doc, list):
        rules, default = doc, DEFAULT_REPLY
    elif isinstance(doc, dict) and isinstance(doc.get("rules", []), list):
        rules, default = doc.get("rules", []), doc.get("default", DEFAULT_REPLY)
    else:
        raise ValueError("a script is a list of rules or an object with \"rules\"")
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or not isinstance(rule.get("match", ""), str):
            raise ValueError("rule %d: a rule is an object whose \"match\" is a string" % i)
    with state_lock:
        state["rules"] = rules
        state["default"] = default
        state["counts"] = [0] * len(rules)


QUESTION_MARK = re.compile(r"(?im)^\s*question\s*:")


def question_of(body):
    """The question a request asks, which the rules are matched against.

    A prompt builder usually wraps the question in context (schema, examples) and marks it
    with a line starting "Question:" (any case). The question is the text after the last
    such marker in the most recent user message that has one -- so a later correction
    message ("that failed: column x does not exist") still counts as the same question and
    walks a rule's "replies". With no marker anywhere, it is the whole last user message.
    """
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return ""
    users = [content_text(m.get("content")) for m in messages
             if isinstance(m, dict) and m.get("role") == "user"]
    for text in reversed(users):
        marks = list(QUESTION_MARK.finditer(text))
        if marks:
            return text[marks[-1].end():].strip()
    return users[-1].strip() if users else ""


def content_text(content):
    """A message's content as text: a string, or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def rule_matches(pattern, question):
    """"/regex/" (optionally "/regex/i") is a regular expression; anything else a substring,
    compared without regard to case."""
    m = re.fullmatch(r"/(.*)/(i?)", pattern, re.S)
    if m:
        return re.search(m.group(1), question, re.I if m.group(2) else 0) is not None
    return pattern.lower() in question.lower()


def choose(question):
    """Pick the answer for a question: (rule index or None, rule dict, reply text, misbehave).

    misbehave is False once a rule's "times" budget of failures is spent, so a rule can fail
    the first N calls and answer normally afterwards.
    """
    with state_lock:
        for i, rule in enumerate(state["rules"]):
            if not rule_matches(rule.get("match", ""), question):
                continue
            n = state["counts"][i]
            state["counts"][i] = n + 1
            times = rule.get("times")
            misbehave = times is None or n < times
            replies = rule.get("replies")
            if isinstance(replies, list) and replies:
                # Successive calls walk the list; failures counted by "times" do not use
                # up a reply.
                k = n - times if (times is not None and n >= times) else n
                reply = replies[min(k, len(replies) - 1)]
            else:
                reply = rule.get("reply", state["default"])
            return i, rule, reply, misbehave
        return None, {}, state["default"], False


def approx_tokens(text):
    """A rough token count (about four characters per token), never zero for a request."""
    return max(1, (len(text) + 3) // 4)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-llm/1"
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("fake-llm: " + (fmt % args) + "\n")

    def send_json(self, status, obj, extra_headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra_headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (timeout, abort): nothing to answer to.
            self.close_connection = True

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        if self.path == "/_log":
            with state_lock:
                log = list(state["log"])
            self.send_json(200, log)
        elif self.path in ("/v1/models", "/models"):
            self.send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self.send_json(404, {"error": {"message": "no such path: " + self.path}})

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_script":
            try:
                load_script(json.loads(raw or b"null"))
            except ValueError as e:
                self.send_json(400, {"error": str(e)})
                return
            self.send_json(200, {"ok": True})
        elif self.path == "/_reset":
            with state_lock:
                state["log"] = []
                state["counts"] = [0] * len(state["rules"])
            self.send_json(200, {"ok": True})
        elif self.path in ("/v1/chat/completions", "/chat/completions"):
            self.answer(raw, "openai")
        elif self.path in ("/v1/messages", "/messages"):
            self.answer(raw, "anthropic")
        else:
            self.send_json(404, {"error": {"message": "no such path: " + self.path}})

    def api_key(self, provider):
        if provider == "anthropic":
            return self.headers.get("x-api-key")
        auth = self.headers.get("Authorization")
        if auth and auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return auth

    def answer(self, raw, provider):
        key = self.api_key(provider)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        entry = {
            "time": time.time(),
            "path": self.path,
            "provider": provider,
            "headers": {k.lower(): v for k, v in self.headers.items()
                        if k.lower() not in ("authorization", "x-api-key")},
            "key_present": key is not None,
            "key_matches": expect_key is not None and key == expect_key,
            "body": body if body is not None else raw.decode("utf-8", "replace"),
        }
        with state_lock:
            state["log"].append(entry)

        if expect_key is not None and key != expect_key:
            entry["status"] = 401
            self.send_error_json(provider, 401, "invalid api key", "authentication_error")
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            entry["status"] = 400
            self.send_error_json(provider, 400, "request body must be JSON with messages",
                                 "invalid_request_error")
            return

        question = question_of(body)
        index, rule, reply, misbehave = choose(question)
        entry["question"] = question
        entry["rule"] = index

        delay = rule.get("delay")
        if isinstance(delay, (int, float)) and delay > 0:
            time.sleep(delay)

        status = rule.get("status")
        if misbehave and isinstance(status, int) and status != 200:
            entry["status"] = status
            headers = {}
            if rule.get("retry_after") is not None:
                headers["Retry-After"] = str(rule["retry_after"])
            kind = "rate_limit_error" if status == 429 else "api_error"
            message = rule.get("error_message", "scripted failure (HTTP %d)" % status)
            self.send_error_json(provider, status, message, kind, headers)
            return
        if misbehave and rule.get("malformed"):
            entry["status"] = 200
            self.send_json(200, None, raw=b'{"id": "broken", "choices": [ {"message": ')
            return

        prompt_text = json.dumps(body.get("messages")) + str(body.get("system", ""))
        pt = rule.get("prompt_tokens", approx_tokens(prompt_text))
        ct = rule.get("completion_tokens", approx_tokens(reply))
        model = body.get("model", "fake")
        entry["status"] = 200
        if provider == "openai":
            self.send_json(200, {
                "id": "chatcmpl-" + uuid.uuid4().hex[:12],
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0,
                             "message": {"role": "assistant", "content": reply},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": pt, "completion_tokens": ct,
                          "total_tokens": pt + ct},
            })
        else:
            self.send_json(200, {
                "id": "msg_" + uuid.uuid4().hex[:12],
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": reply}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": pt, "output_tokens": ct},
            })

    def send_error_json(self, provider, status, message, kind, headers=None):
        if provider == "anthropic":
            obj = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            obj = {"error": {"message": message, "type": kind, "code": None}}
        self.send_json(status, obj, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog (5) would refuse a burst of simultaneous ASKs.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A client that timed out or was cancelled hangs up on a slow answer:
        # expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main():
    global expect_key
    ap = argparse.ArgumentParser(description="Offline stand-in LLM (OpenAI- and Anthropic-shaped).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089, help="0 picks a free port")
    ap.add_argument("--script", help="JSON rules file (see README.md)")
    ap.add_argument("--expect-key", help="answer 401 unless requests carry this API key")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args()

    expect_key = args.expect_key
    Handler.verbose = args.verbose
    if args.script:
        try:
            with open(args.script, encoding="utf-8") as f:
                load_script(json.load(f))
        except (OSError, ValueError) as e:
            sys.stderr.write("fake-llm: %s: %s\n" % (args.script, e))
            return 2

    server = Server((args.host, args.port), Handler)
    print("LISTENING %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
