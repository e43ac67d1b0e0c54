"""Fault tests: what a client sees when the world around pgwarden breaks.

Issue 14 lists how an operator's worst day goes: backends terminated or
killed in the middle of a query or a COPY, PostgreSQL restarted under
pgwarden, an LLM that is slow, rate-limited, failing, malformed, answering
DML or hanging, clients that vanish in the middle of a result or an ASK,
reloads while clients run queries. Each test here plays one of those and
asserts what a user of a PostgreSQL proxy expects to see: a real error with a
SQLSTATE instead of a hang or a corrupted result, the other clients served as
before, nothing left behind (memory from /proc/PID/status, descriptors from
/proc/PID/fd, backend statements from pg_stat_activity).

The faults issue 14 found are tests too, each asserting the behaviour the
fix must produce, not the defect. Those not fixed yet are marked
xfail(strict=True, reason="issue 14 item N"): the day the fix lands they
pass, which strict mode reports as a failure, so the marker goes with the
fix (items 1a, 2, 3, 4 and 5 lost theirs when the runtime's fixes merged, item 7's
SCRAM and TLS ones with the fixes branch).

Killing a backend with SIGKILL makes the postmaster restart every backend of
the session's shared cluster; those tests wait until it accepts connections
again before they end, so later modules start from a healthy server.
"""

import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import psycopg
import pytest

import pgwire
from askutil import FakeLLM, llm_section, sql_reply
from conftest import (DEFAULT_TIMEOUT, HOST, PASSWORDS, PG_BINDIR, PGWARDEN_BIN, rss_kb,
                      wait_until)

# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def message(kind, body=b""):
    return kind + struct.pack("!I", len(body) + 4) + body


def cstr(text):
    return text.encode() + b"\0"


def query_msg(sql):
    return message(b"Q", cstr(sql))


def parse_msg(sql, name="", types=()):
    return message(b"P", cstr(name) + cstr(sql) + struct.pack("!H", len(types))
                   + b"".join(struct.pack("!I", t) for t in types))


def bind_msg(params=(), portal="", statement=""):
    body = cstr(portal) + cstr(statement) + struct.pack("!H", 0) + struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!I", len(p)) + p
    return message(b"B", body + struct.pack("!H", 0))


def execute_msg(portal=""):
    return message(b"E", cstr(portal) + struct.pack("!I", 0))


SYNC = message(b"S")


def fields(payload):
    return {chr(p[0]): p[1:].decode(errors="replace") for p in payload.split(b"\0") if p}


def read_until_ready(session, timeout=10):
    """Messages up to and including the next ReadyForQuery, as (kind, payload)."""
    session.sock.settimeout(timeout)
    out = []
    while True:
        kind, payload = session.read_message()
        out.append((kind, payload))
        if kind == b"Z":
            return out


def summary(messages):
    """Message types, an ErrorResponse as E:<SQLSTATE>, ReadyForQuery as Z:<status>;
    notices and ParameterStatus left out."""
    out = []
    for kind, payload in messages:
        if kind in (b"N", b"S"):
            continue
        if kind == b"E":
            out.append(f"E:{fields(payload).get('C')}")
        elif kind == b"Z":
            out.append(f"Z:{payload.decode()}")
        else:
            out.append(kind.decode())
    return out


def login(gw, user="alice", dbname="acme", **options):
    session = pgwire.Session(HOST, gw.port)
    return session.startup(user, dbname, gw.passwords.get(user, PASSWORDS.get(user)), **options)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def tenant_of(conn):
    return conn.execute("SELECT name FROM tenant_marker").fetchone()[0]


def backend_pids(postgres, marker):
    """PIDs of backends running (state active) a statement that contains marker."""
    with postgres.connect() as su:
        rows = su.execute(
            "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s "
            "AND pid <> pg_backend_pid()", (f"%{marker}%",)).fetchall()
    return [r[0] for r in rows]


def backend_pid_of_session(postgres, application_name):
    with postgres.connect() as su:
        rows = su.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                          (application_name,)).fetchall()
    return [r[0] for r in rows]


def make_durable(postgres):
    """The harness runs PostgreSQL with synchronous_commit = off: a crash
    restart (SIGKILL of any backend) would lose the last commits of the
    set-up (the GRANTs to reader). A checkpoint first makes them durable."""
    with postgres.connect() as su:
        su.execute("CHECKPOINT")


def wait_postgres_accepts(postgres, timeout=30):
    def up():
        try:
            with postgres.connect() as su:
                return su.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False
    wait_until(up, timeout, "PostgreSQL to accept connections again", interval=0.2)


def serves(gw, user="alice", dbname="acme"):
    try:
        with gw.connect(user, dbname) as conn:
            return tenant_of(conn) == dbname
    except psycopg.Error:
        return False


def settle_fds(gw, baseline, timeout=10):
    """Wait until pgwarden holds no more descriptors than at baseline (its
    pooled backend sessions may stay: they are counted in the baseline)."""
    wait_until(lambda: fd_count(gw.pid) <= baseline, timeout,
               f"pgwarden's descriptors to return to {baseline} (now {fd_count(gw.pid)})")


ROW = re.compile(rb"^\d+\tx{100}$")
# One row every 10 ms: the backend is never blocked sending, so it always
# stands between two rows (in pg_sleep) when it is told to terminate.
PACED_COPY = ("COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g, "
              "LATERAL pg_sleep(0.01 + 0 * g) AS s) TO STDOUT")


class CopyReader:
    """psql running a COPY TO STDOUT through pgwarden. prime: bytes read
    before the test goes on; after that nothing is read until finish()."""

    def __init__(self, gw, sql, prime):
        self.proc = subprocess.Popen(
            ["psql", "-X", "-q", "-d", gw.conninfo("alice", "acme", sslmode="disable",
                                                   application_name="faults_copy"),
             "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray(self.proc.stdout.read(prime) if prime else b"")

    def finish(self, timeout=30):
        self.out += self.proc.stdout.read()
        err = self.proc.stderr.read().decode(errors="replace")
        return self.proc.wait(timeout), err

    def bad_lines(self):
        """Lines that are not a whole row (the output must end with \\n)."""
        lines = bytes(self.out).split(b"\n")
        tail = lines.pop()  # after the last \n: must be empty
        bad = [line for line in lines if not ROW.match(line)]
        if tail:
            bad.append(tail)
        return bad

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def gw(pgwarden):
    return pgwarden(settings={"pool_size": "4"})


# --------------------------------------------------------------------------
# Backends terminated or killed
# --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_backend_terminated_mid_query_is_a_57P01_error_and_others_go_on(gw, postgres):
    """pg_terminate_backend on the session running a client's query: the
    client gets a connection-class error that names the termination (not a
    hang, not a generic error), a bystander on the same tenant is untouched,
    and the victim's connection goes on: its next statement runs on a new
    server session, as the error's hint says."""
    with gw.connect("carol", "acme") as bystander, gw.connect("alice", "acme") as victim:
        outcome = {}

        def run():
            try:
                victim.execute("SELECT pg_sleep(30) AS faults_term_query")
                outcome["result"] = "finished"
            except psycopg.Error as exc:
                outcome["result"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        pids = wait_until(lambda: backend_pids(postgres, "faults_term_query"), 10,
                          "the statement to reach the backend")
        with postgres.connect() as su:
            su.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        thread.join(15)
        assert not thread.is_alive(), "the client was left waiting"
        err = outcome.get("result")
        assert isinstance(err, psycopg.Error), outcome
        assert err.sqlstate in ("57P01", "08006"), (err.sqlstate, str(err))
        assert "terminat" in str(err)
        assert tenant_of(bystander) == "acme"
        assert tenant_of(victim) == "acme"
    assert serves(gw)


@pytest.mark.timeout(90)
def test_backend_killed_mid_query_is_an_error_and_pgwarden_recovers(gw, postgres):
    """SIGKILL of the backend (the postmaster then restarts every backend):
    the client gets an error promptly, pgwarden stays up, and once
    PostgreSQL is back every tenant is served with fresh sessions."""
    make_durable(postgres)
    victim = gw.connect("alice", "acme")
    outcome = {}

    def run():
        try:
            victim.execute("SELECT pg_sleep(30) AS faults_kill_query")
            outcome["result"] = "finished"
        except psycopg.Error as exc:
            outcome["result"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        pids = wait_until(lambda: backend_pids(postgres, "faults_kill_query"), 10,
                          "the statement to reach the backend")
        os.kill(pids[0], signal.SIGKILL)
        thread.join(15)
        assert not thread.is_alive(), "the client was left waiting"
        assert isinstance(outcome.get("result"), psycopg.Error), outcome
        assert gw.alive()
    finally:
        victim.close()
        wait_postgres_accepts(postgres)
    wait_until(lambda: serves(gw, "alice", "acme") and serves(gw, "bob", "globex"), 30,
               "both tenants to be served after the crash restart", interval=0.2)


@pytest.mark.timeout(90)
def test_backend_terminated_mid_copy_ends_the_copy_with_whole_rows(gw, postgres):
    """pg_terminate_backend while a COPY TO STDOUT streams to psql (the
    backend between two rows): psql reports the termination and exits
    non-zero; every line it wrote is a whole row; pgwarden serves on."""
    reader = CopyReader(gw, PACED_COPY, prime=0)
    try:
        reader.out += reader.proc.stdout.read(4096)  # rows are flowing
        pids = wait_until(lambda: backend_pids(postgres, "generate_series(1, 100000)"), 10,
                          "the COPY to reach the backend")
        with postgres.connect() as su:
            su.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        rc, err = reader.finish()
    finally:
        reader.kill()
    assert rc != 0
    assert "terminat" in err, err
    assert len(reader.out) >= 4096
    assert reader.bad_lines() == []
    assert serves(gw)


def stop_backend(postgres, pid, how):
    if how == "kill":
        os.kill(pid, signal.SIGKILL)
    else:
        with postgres.connect() as su:
            su.execute("SELECT pg_terminate_backend(%s)", (pid,))


HUGE = 50_000_000
HUGE_COPY = f"COPY (SELECT repeat('x', {HUGE}) AS faults_huge) TO STDOUT"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["terminate", "kill"])
def test_backend_dying_mid_message_never_corrupts_what_the_client_reads(gw, postgres, how):
    """The backend dies (pg_terminate_backend, or SIGKILL) in the middle of
    sending one 50 MB CopyData that pgwarden has already half relayed (the
    client reads slowly, so the backend is blocked in ClientWrite: the death
    is mid-message every time). What the client reads must be bytes the
    server sent: the connection may close short of the message's end (the
    only honest move once a message is half sent), but pgwarden must not
    write its own ErrorResponse into the middle of it, which a client
    parses as data -- psql prints that as a corrupted last row."""
    if how == "kill":
        make_durable(postgres)
    session = login(gw)
    try:
        session.send_query(HUGE_COPY)
        session.sock.settimeout(20)
        kind, _ = session.read_message()
        while kind != b"H":  # CopyOutResponse
            kind, _ = session.read_message()
        kind = session._recv_exact(1)
        assert kind == b"d"
        (length,) = struct.unpack("!I", session._recv_exact(4))
        assert length - 4 == HUGE + 1  # the row and its newline
        payload = bytearray(session._recv_exact(1 << 16))

        def blocked():
            with postgres.connect() as su:
                return su.execute(
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE '%faults_huge%' "
                    "AND wait_event = 'ClientWrite' AND pid <> pg_backend_pid()").fetchall()

        pids = wait_until(blocked, 15, "the backend to block sending the message")
        stop_backend(postgres, pids[0][0], how)
        while len(payload) < length - 4:
            try:
                chunk = session.sock.recv(1 << 20)
            except OSError:
                break
            if not chunk:
                break
            payload += chunk
    finally:
        session.close(graceful=False)
        if how == "kill":
            wait_postgres_accepts(postgres)
    body = bytes(payload[: length - 4])
    foreign = body.replace(b"x", b"")
    assert foreign in (b"", b"\n"), f"bytes the server never sent: {foreign[:80]!r}"
    wait_until(lambda: serves(gw), 30, "pgwarden to serve again", interval=0.2)


@pytest.mark.timeout(60)
def test_backend_lost_inside_a_transaction_is_reported_to_the_client(gw, postgres):
    """A client idle in a REPEATABLE READ transaction with an open cursor
    whose backend session is terminated: its next statement must fail with
    a connection-class error (08xxx / 57P0x) -- never run silently outside
    the transaction the client believes it is in."""
    session = login(gw, application_name="faults_tx")
    try:
        for sql in ("BEGIN ISOLATION LEVEL REPEATABLE READ",
                    "DECLARE faults_cur CURSOR FOR SELECT id FROM customers"):
            rows, error = session.simple_query(sql)
            assert error is None, error
        pids = wait_until(lambda: backend_pid_of_session(postgres, "faults_tx"), 10,
                          "the client's backend session")
        with postgres.connect() as su:
            su.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        wait_until(lambda: not backend_pid_of_session(postgres, "faults_tx"), 10,
                   "the backend to be gone")
        try:
            rows, error = session.simple_query("SELECT 1 AS after_loss")
        except (ConnectionError, OSError):
            error = {"C": "08006"}  # closed after a FATAL: the client was told
        assert error is not None, "the statement ran although the transaction was lost"
        assert error.get("C", "")[:2] in ("08", "57"), error
    finally:
        session.close()


@pytest.mark.timeout(60)
def test_a_query_inside_a_failed_extended_batch_does_not_hang_the_session(pgwarden, postgres):
    """Parse/Bind(wrong parameter count)/Execute/Query/Sync: PostgreSQL
    answers the Bind error and skips everything up to the Sync, the Query
    included. pgwarden must model that skip: afterwards its own answers (a
    refusal) and plain queries come back at once."""
    sequence = (parse_msg("select $1::int") + bind_msg([b"1", b"2"]) + execute_msg()
                + query_msg("select 1") + SYNC)
    direct = pgwire.Session(HOST, postgres.port).startup("reader", "acme")
    try:
        direct.sock.sendall(sequence)
        reference = summary(read_until_ready(direct))
    finally:
        direct.close()
    assert reference == ["1", "E:08P01", "Z:I"]  # what PostgreSQL does

    gw = pgwarden()  # its own: today the hung session outlives the test
    session = login(gw)
    try:
        session.sock.sendall(sequence)
        assert summary(read_until_ready(session)) == reference
        session.sock.sendall(query_msg("DELETE FROM customers"))
        assert summary(read_until_ready(session, timeout=5)) == ["E:42501", "Z:I"]
        session.sock.settimeout(5)
        assert session.simple_query("SELECT 2") == ([["2"]], None)
    finally:
        session.close()


# --------------------------------------------------------------------------
# PostgreSQL restarted
# --------------------------------------------------------------------------


def restart_postgres(postgres):
    """pg_ctl restart keeps the port and options (postmaster.opts); -l keeps
    the server's output out of the pipes subprocess.run waits on."""
    postgres._run_as_owner([str(PG_BINDIR / "pg_ctl"), "-D", str(postgres.data), "-l",
                            str(postgres.log), "-m", "fast", "-w", "-t", "60", "restart"])


@pytest.mark.timeout(120)
def test_postgresql_restart_fails_open_statements_cleanly_and_pgwarden_reconnects(gw, postgres):
    """PostgreSQL restarted (pg_ctl restart -m fast) under connected
    clients: a statement running at that moment fails with an error (57P01
    from the shutdown), idle clients and new ones are served by fresh
    sessions once the server is back, pgwarden itself never exits."""
    idle = gw.connect("bob", "globex")
    busy = gw.connect("alice", "acme")
    assert tenant_of(idle) == "globex" and tenant_of(busy) == "acme"
    outcome = {}

    def run():
        try:
            busy.execute("SELECT pg_sleep(30) AS faults_restart")
            outcome["result"] = "finished"
        except psycopg.Error as exc:
            outcome["result"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until(lambda: backend_pids(postgres, "faults_restart"), 10,
                   "the statement to reach the backend")
        restart_postgres(postgres)
        thread.join(15)
        assert not thread.is_alive()
        err = outcome.get("result")
        assert isinstance(err, psycopg.Error), outcome
        assert err.sqlstate in ("57P01", "08006", "08003", None), (err.sqlstate, str(err))
        assert gw.alive()
        wait_postgres_accepts(postgres)

        # The idle client's session died behind pgwarden's back: its next
        # statement is served on a fresh session, or fails once with a
        # connection error after which the connection is gone; never a
        # wrong answer.
        try:
            assert tenant_of(idle) == "globex"
        except psycopg.Error as exc:
            assert exc.sqlstate is None or exc.sqlstate[:2] in ("08", "57"), str(exc)
        wait_until(lambda: serves(gw, "alice", "acme") and serves(gw, "bob", "globex"), 30,
                   "new clients to be served after the restart", interval=0.2)
    finally:
        idle.close()
        busy.close()


# --------------------------------------------------------------------------
# Clients that go away
# --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_client_gone_mid_result_stops_the_statement_and_frees_everything(gw, postgres):
    """A client that disconnects (no Terminate) while a long result streams:
    the statement stops on the backend, pgwarden's descriptors go back to
    where they were, and memory does not stay with the dead client."""
    assert serves(gw)
    baseline_fds = fd_count(gw.pid)
    baseline_rss = rss_kb(gw.pid)
    for _ in range(3):
        session = login(gw)
        # two small series joined: rows stream at once (one big series
        # would be materialized first)
        session.send_query("SELECT a, b, repeat('y', 200) AS faults_gone FROM "
                           "generate_series(1, 10000) a, generate_series(1, 10000) b")
        kind, _ = session.read_message()
        while kind != b"D":
            kind, _ = session.read_message()
        session.close(graceful=False)
        wait_until(lambda: not backend_pids(postgres, "faults_gone"), 15,
                   "the abandoned statement to stop on the backend")
    settle_fds(gw, baseline_fds + 4)  # at most pool_size idle backend sessions more
    growth_mb = (rss_kb(gw.pid) - baseline_rss) / 1024
    assert growth_mb < 32, f"pgwarden kept {growth_mb:.0f} MB after the clients left"
    assert serves(gw)


@pytest.fixture(scope="module")
def llm():
    stand_in = FakeLLM()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def ask_gw(pgwarden, llm):
    return pgwarden(settings={"pool_size": "4"},
                    extra=llm_section(llm, timeout="2s", max_attempts="2"))


@pytest.mark.timeout(60)
def test_client_gone_mid_ask_abandons_the_call_and_frees_everything(ask_gw, llm):
    """A client that disconnects while the model is thinking: pgwarden stays
    up, drops the model call (its descriptors go back to the baseline), and
    the next client's ASK is answered."""
    gw = ask_gw
    llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM orders")}])
    with gw.connect("alice", "acme") as conn:
        assert conn.execute("ASK warm up the schema").fetchone() == (3,)
    baseline = fd_count(gw.pid)
    llm.script([{"match": "", "delay": 1.5, "reply": sql_reply("SELECT 1")}])
    for i in range(3):
        session = login(gw)
        session.send_query(f"ASK a question nobody waits for {i}")
        wait_until(lambda: llm.calls() >= 1, 5, "the model call to start")
        session.close(graceful=False)
        llm.reset()
    assert gw.alive()
    settle_fds(gw, baseline + 2)  # curl may keep one idle keep-alive connection
    llm.script([{"match": "", "reply": sql_reply("SELECT count(*) FROM orders")}])
    with gw.connect("alice", "acme") as conn:
        assert conn.execute("ASK how many orders now").fetchone() == (3,)


# --------------------------------------------------------------------------
# The LLM broken in every way the stand-in can
# --------------------------------------------------------------------------

# (name, stand-in rule, expected: rows, or the SQLSTATE of the error)
LLM_FAULTS = [
    ("slow", {"delay": 1.0, "reply": sql_reply("SELECT count(*) FROM orders")}, [(3,)]),
    ("429_then_ok", {"status": 429, "retry_after": 0, "times": 1,
                     "reply": sql_reply("SELECT count(*) FROM orders")}, [(3,)]),
    ("429_always", {"status": 429, "retry_after": 0, "error_message": "slow down"}, "58000"),
    ("500", {"status": 500, "error_message": "internal model failure"}, "58000"),
    ("503", {"status": 503, "error_message": "overloaded"}, "58000"),
    ("malformed", {"malformed": True}, "58000"),
    ("dml", {"reply": sql_reply("DELETE FROM orders")}, "42501"),
    ("ddl", {"reply": sql_reply("DROP TABLE orders")}, "42501"),
    ("prose", {"reply": "Sure! Orders are things customers place."}, None),
    ("hang", {"delay": 30, "reply": sql_reply("SELECT 1")}, "58000"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,rule,expected", LLM_FAULTS, ids=[f[0] for f in LLM_FAULTS])
def test_a_broken_llm_gives_a_clear_answer_and_holds_nobody_up(ask_gw, llm, postgres, name,
                                                               rule, expected):
    """Whatever the model does, the asking client gets rows or an
    ErrorResponse with a SQLSTATE (a hanging model: after [llm] timeout),
    its session stays usable, nothing it answered ran as DML, and while the
    model is slow another client's plain query is answered (the ASK does not
    hold its worker)."""
    gw = ask_gw
    llm.script([dict(match="", **rule)])
    with gw.connect("alice", "acme") as asker, gw.connect("carol", "acme") as bystander:
        outcome = {}

        def ask():
            try:
                outcome["rows"] = asker.execute(f"ASK how many orders, {name}").fetchall()
            except psycopg.Error as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=ask)
        thread.start()
        if rule.get("delay", 0) >= 1:
            wait_until(lambda: llm.calls() >= 1, 5, "the model call to start")
            # the ASK is still waiting for the model; a plain query is not
            assert tenant_of(bystander) == "acme"
            assert thread.is_alive()
        thread.join(30)
        assert not thread.is_alive(), "the ASK never finished"
        if isinstance(expected, list):
            assert outcome.get("rows") == expected, outcome
        else:
            err = outcome.get("error")
            assert err is not None, outcome
            assert err.sqlstate and len(err.sqlstate) == 5, str(err)
            if expected:
                assert err.sqlstate == expected, (err.sqlstate, str(err))
        assert asker.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    with postgres.connect("acme") as su:
        assert su.execute("SELECT count(*) FROM orders").fetchone() == (3,)
    assert gw.alive()


# --------------------------------------------------------------------------
# Reload storm under load
# --------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_reload_storm_under_load_gives_no_wrong_answer_and_no_error(pgwarden):
    """SIGHUP every 20 ms for 4 s while 16 clients of two tenants run
    queries and reconnect: every answer is the client's own tenant's, no
    statement fails, pgwarden stays up and its descriptors come back."""
    gw = pgwarden(settings={"pool_size": "8"})
    assert serves(gw, "alice", "acme") and serves(gw, "bob", "globex")
    baseline = fd_count(gw.pid)
    stop = threading.Event()
    results = {"ok": 0, "wrong": [], "errors": []}
    lock = threading.Lock()

    def client(user, tenant):
        while not stop.is_set():
            try:
                with gw.connect(user, tenant) as conn:
                    for _ in range(20):
                        got = tenant_of(conn)
                        with lock:
                            if got == tenant:
                                results["ok"] += 1
                            else:
                                results["wrong"].append((user, got))
            except psycopg.Error as exc:
                with lock:
                    results["errors"].append(f"{user}: {exc.sqlstate} {exc}")

    threads = [threading.Thread(target=client, args=(u, t))
               for u, t in [("alice", "acme"), ("bob", "globex")] * 8]
    for t in threads:
        t.start()
    reloads = 0
    deadline = time.monotonic() + 4
    try:
        while time.monotonic() < deadline:
            gw.signal(signal.SIGHUP)
            reloads += 1
            time.sleep(0.02)  # pacing of the storm, not synchronisation
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert results["wrong"] == []
    assert results["errors"] == []
    assert results["ok"] > 100, results["ok"]
    assert reloads > 50
    assert gw.alive()
    settle_fds(gw, baseline + 16)  # pooled sessions of the two tenants may stay
    assert serves(gw, "alice", "acme") and serves(gw, "bob", "globex")


PROTOCOL_KINDS = set(b"TDCZNSIE")  # what a simple query may answer, one byte each
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[\d+\] "
                      r"(DEBUG|LOG|WARNING|ERROR|FATAL): ")


def numbers_open_on(pid, path):
    """The descriptor numbers of process pid that are open on path."""
    out = []
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == str(path):
                out.append(int(name))
        except OSError:
            pass  # closed meanwhile
    return sorted(out)


def whole_lines(path):
    """The lines of a file that must consist of whole lines only."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path.name} ends in a partial line"
    return data.decode().splitlines()


def test_reload_storm_with_log_files_never_sends_a_client_a_log_line(pgwarden):
    """Issue 14 item 6. SIGHUP every 20 ms, the log_file and the
    audit_log rotated (renamed) before every other reload so each reload
    really reopens both, while 12 clients log in, run queries and log out
    as fast as they can (every login takes a new descriptor number, the
    moment a just-closed log number would be handed out again). What every
    client reads must be protocol messages only: one stray log or audit
    line (a timestamp, a JSON object with another tenant's SQL) turns up as
    an unknown message type or a broken length. Every log and audit file,
    rotated or current, holds whole lines only, and the current ones keep
    getting lines after the storm.

    The race itself is a window of nanoseconds (a writer between loading
    the descriptor number and write(2)), too narrow to hit on demand, so
    the test also checks the invariant that rules it out: the log lives at
    one descriptor number for good, which after every reopen points at the
    current file (a number that is never closed cannot be handed to a
    socket)."""
    gw = pgwarden(start=False, settings={"auth_type": "trust", "pool_size": "8"})
    log_file, audit_file = gw.dir / "gw-file.log", gw.dir / "audit.jsonl"
    gw.write_config(settings={"auth_type": "trust", "pool_size": "8",
                              "log_file": str(log_file), "audit_log": str(audit_file)})
    gw.start()
    log_numbers = numbers_open_on(gw.pid, log_file)
    assert len(log_numbers) == 1, log_numbers
    stop = threading.Event()
    results = {"queries": 0, "bad": [], "errors": []}
    lock = threading.Lock()

    def client(user, tenant):
        while not stop.is_set():
            session = None
            try:
                session = pgwire.Session(HOST, gw.port, timeout=DEFAULT_TIMEOUT / 3)
                session.startup(user, tenant)
                for i in range(5):
                    session.send_query(f"SELECT name, {i} AS storm FROM tenant_marker")
                    while True:
                        kind, payload = session.read_message()
                        if kind[0] not in PROTOCOL_KINDS or len(payload) > 65536:
                            raise AssertionError(f"not protocol: {kind!r} {payload[:80]!r}")
                        if kind == b"E":
                            raise AssertionError(f"error: {fields(payload)}")
                        if kind == b"D" and tenant.encode() not in payload:
                            raise AssertionError(f"another tenant's row: {payload!r}")
                        if kind == b"Z":
                            break
                    with lock:
                        results["queries"] += 1
            except (AssertionError, pgwire.ServerError, struct.error) as exc:
                with lock:
                    results["bad"].append(f"{user}: {exc!r}")
            except OSError as exc:
                with lock:
                    results["errors"].append(f"{user}: {exc!r}")
            finally:
                if session:
                    session.close()

    threads = [threading.Thread(target=client, args=(u, t))
               for u, t in [("alice", "acme"), ("bob", "globex")] * 6]
    for t in threads:
        t.start()
    reloads, rotated = 0, []

    def enough():
        with lock:
            return reloads >= 200 and results["queries"] >= 200

    # The storm lasts until both the reloads and the queries are many (a
    # sanitizer build runs a tenth as many queries a second), within a
    # third of the test's limit.
    deadline = time.monotonic() + DEFAULT_TIMEOUT / 3
    try:
        while not enough() and time.monotonic() < deadline:
            if reloads % 2 == 0:
                for path in (log_file, audit_file):
                    if path.exists():
                        target = path.with_name(f"{path.name}.{reloads}")
                        path.rename(target)
                        rotated.append(target)
            gw.signal(signal.SIGHUP)
            reloads += 1
            time.sleep(0.02)  # pacing of the storm, not synchronisation
            # Reloads interleave with traffic: the next one waits until some
            # query finished since this one (at once on a plain build; a
            # sanitizer build would otherwise spend the storm on reloads).
            with lock:
                seen = results["queries"]
            while time.monotonic() < deadline and not stop.is_set():
                with lock:
                    if results["queries"] > seen:
                        break
                time.sleep(0.005)
    finally:
        stop.set()
        for t in threads:
            t.join(DEFAULT_TIMEOUT / 3)
    assert results["bad"] == [], results["bad"][:5]
    assert results["errors"] == [], results["errors"][:5]
    assert enough(), (reloads, results["queries"])
    assert gw.alive()

    # The current files keep receiving whole lines after the storm. The last
    # rename may still wait for its reload (a loaded machine is slow to take
    # the SIGHUP), and until then lines rightly go to the renamed file: the
    # reload recreates the current ones, so wait for them first.
    wait_until(lambda: audit_file.exists() and log_file.exists(), DEFAULT_TIMEOUT / 4,
               "the last reload to reopen the log files")
    with gw.connect("alice", "acme") as conn:
        conn.execute("SELECT name, 'after the storm' FROM tenant_marker").fetchall()

    def audited():
        return audit_file.exists() and any(
            "after the storm" in json.loads(line).get("sql", "")
            for line in whole_lines(audit_file))
    wait_until(audited, DEFAULT_TIMEOUT / 4, "the statement after the storm in the audit log")
    wait_until(lambda: log_file.exists() and any(
        "alice" in line for line in whole_lines(log_file)), DEFAULT_TIMEOUT / 4,
        "the login after the storm in log_file")

    assert numbers_open_on(gw.pid, log_file) == log_numbers
    assert len(rotated) > 20, rotated
    audit_records = 0
    for path in rotated + [log_file, audit_file]:
        for line in whole_lines(path):
            if path.name.startswith("audit"):
                record = json.loads(line)  # a partial or mixed line fails here
                assert {"time", "user", "tenant", "sql"} <= record.keys(), record
                audit_records += 1
            else:
                assert LOG_LINE.match(line), f"{path.name}: {line[:200]!r}"
    assert audit_records >= results["queries"], (audit_records, results["queries"])


# --------------------------------------------------------------------------
# Memory and descriptors (issue 14 items 1a and 5)
# --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_client_that_never_reads_its_refusals_has_bounded_memory(gw):
    """A client pipelining statements pgwarden refuses itself (no backend
    involved) and never reading the answers: pgwarden must stop reading
    from it once its output is past the bound, exactly as for relayed
    results, instead of queueing its own ErrorResponses without limit."""
    baseline = rss_kb(gw.pid)
    peak = baseline
    refused = query_msg("DELETE FROM customers") * 5000  # ~130 kB a batch
    session = login(gw)
    sock = session.sock
    sock.setblocking(False)
    pending, sent = b"", 0
    deadline = time.monotonic() + 8
    next_sample = 0.0
    try:
        while time.monotonic() < deadline and sent < (60 << 20):
            if not pending:
                pending = refused
            try:
                n = sock.send(pending)
                sent += n
                pending = pending[n:]
            except BlockingIOError:
                time.sleep(0.01)
            if time.monotonic() >= next_sample:
                peak = max(peak, rss_kb(gw.pid))
                next_sample = time.monotonic() + 0.1
        peak = max(peak, rss_kb(gw.pid))
    finally:
        sock.close()
    growth_mb = (peak - baseline) / 1024
    assert sent > len(refused), "the client could not even send one batch"
    assert growth_mb < 64, f"pgwarden grew by {growth_mb:.0f} MB ({sent >> 20} MB sent)"
    assert gw.alive()


LONG_USER = "u" + "l" * 2000  # the leak is the length of "user@address"


@pytest.mark.timeout(120)
def test_logins_do_not_leak_memory(pgwarden):
    """Thousands of tenant logins and logouts leave pgwarden's memory where
    it was. The user name is 2,000 characters long so that a per-login leak
    of the log identity ("user@address") is ~2 kB a login: 3,000 logins
    leak ~6 MB, far above the noise of a process at rest (<1 MB here).
    Not against the ASan build: its 16 MB quarantine of freed blocks fills
    during the run and reads as RSS; LeakSanitizer checks leaks there."""
    if sanitized(PGWARDEN_BIN):
        pytest.skip("ASan's quarantine makes RSS meaningless here; LeakSanitizer covers it")
    gw = pgwarden(settings={"auth_type": "trust"},
                  users={LONG_USER: "acme", "alice": "acme"},
                  passwords={**PASSWORDS, LONG_USER: "x"})

    def logins(n):
        for _ in range(n):
            s = pgwire.Session(HOST, gw.port)
            s.startup(LONG_USER, "acme")
            s.close()

    logins(500)  # warm up: pools, arenas, caches
    before = rss_kb(gw.pid)
    logins(3000)
    growth_kb = rss_kb(gw.pid) - before
    assert growth_kb < 2048, f"3000 logins kept {growth_kb} kB"
    assert serves(gw)


# --------------------------------------------------------------------------
# Login path details (issue 14 item 7)
# --------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_scram_final_message_without_proof_is_reported_as_such(gw):
    """A client-final-message with the right nonce but no p= attribute is a
    malformed message (08P01) and the error says the proof is missing; it
    is not a nonce mismatch, which would send a client author hunting for
    the wrong bug."""
    session = pgwire.Session(HOST, gw.port)
    try:
        body = struct.pack("!I", 196608) + cstr("user") + cstr("alice") + cstr("database") \
            + cstr("acme") + b"\0"
        session.sock.sendall(struct.pack("!I", len(body) + 4) + body)
        kind, payload = session.read_message()
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 10
        first = b"n,,n=,r=faultsnonce"
        session._send(b"p", cstr("SCRAM-SHA-256") + struct.pack("!I", len(first)) + first)
        kind, payload = session.read_message()
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 11
        server_first = payload[4:].decode()
        nonce = dict(a.split("=", 1) for a in server_first.split(","))["r"]
        session._send(b"p", f"c=biws,r={nonce}".encode())
        kind, payload = session.read_message()
        assert kind == b"E"
        err = fields(payload)
        assert err.get("C") == "08P01", err
        assert "proof" in err.get("M", "").lower(), err
        assert "nonce" not in err.get("M", "").lower(), err
    finally:
        session.close(graceful=False)


@pytest.fixture(scope="module")
def tls_gw(pgwarden, tmp_path_factory):
    directory = tmp_path_factory.mktemp("faults-tls")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return pgwarden(settings={"client_tls": "allow", "tls_cert_file": str(cert),
                              "tls_key_file": str(key)})


@pytest.mark.timeout(30)
@pytest.mark.parametrize("request_name,code", [("GSSENCRequest", 80877104),
                                               ("SSLRequest", 80877103)])
def test_encryption_request_inside_tls_is_answered_inside_tls(tls_gw, request_name, code):
    """A GSSENCRequest (or a second SSLRequest) sent after TLS was
    negotiated is not a negotiation any more (PostgreSQL answers it with a
    FATAL ErrorResponse and closes); what the client reads must be that
    ErrorResponse inside the TLS stream, never a raw byte that breaks the
    TLS framing, and then the end of the connection."""
    session = pgwire.Session(HOST, tls_gw.port)
    try:
        assert session.request_ssl() == b"S"
        session.sock.sendall(struct.pack("!II", 8, code))
        session.sock.settimeout(DEFAULT_TIMEOUT)
        try:
            kind, payload = session.read_message()
        except (ssl.SSLError, socket.timeout) as exc:
            pytest.fail(f"no protocol message inside TLS ({exc!r}): a raw byte broke the stream")
        assert kind == b"E", (kind, payload)
        err = fields(payload)
        assert err.get("S") == "FATAL" and err.get("C") == "08P01", err
        assert request_name in err.get("M", ""), err
        try:
            rest = session.sock.recv(1)
        except (ssl.SSLError, ConnectionError):
            rest = b""
        assert rest == b"", rest
    finally:
        session.close(graceful=False)


# --------------------------------------------------------------------------
# Found under the sanitizers (scripts/sanitize.sh)
# --------------------------------------------------------------------------


def sanitized(binary):
    """Is this pgwarden built with ASan+UBSan (scripts/sanitize.mk SAN=asan)?
    A ThreadSanitizer build carries UBSan's handlers in its runtime too, but
    no UBSan checks: only the ASan runtime tells the two apart."""
    try:
        with open(binary, "rb") as f:
            data = f.read()
            return b"__asan_init" in data and b"__ubsan_handle" in data
    except OSError:
        return False


@pytest.mark.timeout(60)
def test_ask_error_cleaning_without_hidden_names_is_defined_behaviour(pgwarden, llm, tmp_path):
    """An ASK whose first answer is refused, on a gateway whose tenant has
    no hidden names: pgwarden cleans the refusal for the model's retry,
    looking names up in the (empty) hidden list. Run against the sanitized
    build with UBSan reporting to a directory of its own and no
    suppressions: no report may appear. Against a plain build undefined
    behaviour is not observable, so the test is skipped there."""
    if not sanitized(PGWARDEN_BIN):
        pytest.skip("not a sanitized build: undefined behaviour is not observable here")
    reports = tmp_path / "ubsan"
    reports.mkdir()
    names = ("ASAN_OPTIONS", "UBSAN_OPTIONS")
    saved = {k: os.environ.get(k) for k in names}
    # log_path is a common flag: both variables must name the directory.
    os.environ["ASAN_OPTIONS"] = f"log_path={reports}/report:detect_leaks=0"
    os.environ["UBSAN_OPTIONS"] = f"log_path={reports}/report:halt_on_error=0:print_stacktrace=1"
    try:
        gw = pgwarden(extra=llm_section(llm, timeout="5s", max_attempts="2"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    llm.script([{"match": "", "replies": [sql_reply('DELETE FROM "orders"'),
                                          sql_reply("SELECT count(*) FROM orders")]}])
    with gw.connect("alice", "acme") as conn:
        try:
            conn.execute("ASK how many orders are there, after a refusal").fetchall()
        except psycopg.Error:
            pass  # the answer does not matter here, only what the sanitizer saw
    assert gw.alive()
    gw.stop()
    found = [p.read_text() for p in reports.iterdir()]
    ub = [t for t in found if "runtime error" in t]
    assert ub == [], ub[0][:2000]
