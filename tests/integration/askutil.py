"""Helpers shared by the ASK integration tests: the stand-in LLM as a process,
the [llm] section that points pgwarden at it, and reading pgwarden's audit log.

The stand-in is contrib/fake-llm/fake_llm.py, started with --port 0; the port
comes from its first stdout line ("LISTENING <port>"). Tests script it over
HTTP (/_script), read what pgwarden sent it (/_log) and clear that (/_reset).
"""

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import HOST, REPO, wait_until

FAKE_LLM = REPO / "contrib" / "fake-llm" / "fake_llm.py"
# The stand-in needs only the standard library; /usr/bin/python3 is the one
# the suite runs with, but fall back to whatever runs the tests.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


class FakeLLM:
    """One stand-in LLM process."""

    def __init__(self, expect_key=None, script=None):
        argv = [PYTHON, str(FAKE_LLM), "--host", HOST, "--port", "0"]
        if expect_key is not None:
            argv += ["--expect-key", expect_key]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True,
                                     start_new_session=True)
        line = self.proc.stdout.readline()
        if not line.startswith("LISTENING "):
            self.stop()
            raise AssertionError(f"fake-llm did not start: {line!r}")
        self.port = int(line.split()[1])
        if script is not None:
            self.script(script)

    @property
    def base_url(self):
        return f"http://{HOST}:{self.port}/v1"

    def _request(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{HOST}:{self.port}{path}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def script(self, rules, default=None):
        """Replace the rules (counters restart) and clear the log."""
        doc = {"rules": rules}
        if default is not None:
            doc["default"] = default
        self._request("/_script", doc)
        self.reset()

    def reset(self):
        self._request("/_reset", {})

    def log(self):
        return self._request("/_log")

    def calls(self):
        """How many API requests (not control requests) arrived since the last reset."""
        return len(self.log())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def prompt_text(entry):
    """Everything a logged request showed the model, as one string."""
    body = entry.get("body")
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


def user_messages(entry):
    body = entry.get("body") or {}
    return [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]


def llm_section(llm, **overrides):
    """An [llm] section pointing at the stand-in; values in overrides win
    (None drops a key)."""
    values = {
        "provider": "openai",
        "base_url": llm.base_url,
        "model": "fake",
        "api_key": "test-key",
        "timeout": "20s",
        "max_attempts": "3",
        "rate_limit": "0",
    }
    values.update(overrides)
    lines = ["", "[llm]"] + [f"{k} = {v}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def sql_reply(sql):
    """A model answer with the SQL in a fenced block, as real models write it."""
    return f"Here is the query:\n```sql\n{sql}\n```\n"


def exact(question):
    """A stand-in rule pattern that matches this question and nothing longer."""
    return "/^" + re.escape(question.strip()) + "$/"


def dollar_quote(text):
    """text as a dollar-quoted literal whose tag does not occur in it."""
    tag = "q"
    while f"${tag}$" in text:
        tag += "q"
    return f"${tag}${text}${tag}$"


def audit_records(path):
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def wait_for_audit(path, predicate, timeout=5, what="an audit record"):
    """The first audit record matching predicate, polling until timeout."""
    def find():
        for rec in audit_records(path):
            if predicate(rec):
                return rec
        return None
    return wait_until(find, timeout, what)
