"""The wire protocol through the gateway: simple and extended queries, binary
results, COPY out, notices, errors, cancellation and streaming."""

import datetime
import decimal
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest
from psycopg import errors

import pgwire
from conftest import HOST, query_one, rss_kb, wait_until


@pytest.fixture(scope="module")
def gw(pgwarden):
    return pgwarden()


EXPECTED_KINDS = (
    42, 9000000000, "héllo", decimal.Decimal("12345.678"), 2.5, True,
    datetime.date(2024, 2, 29),
    datetime.datetime(2024, 2, 29, 12, 34, 56, tzinfo=datetime.timezone.utc),
    b"\x00\xff\x10", [1, 2, 3], {"k": [1, None]},
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
)


@pytest.mark.parametrize("binary", [False, True])
def test_extended_protocol_round_trips_types(gw, binary):
    with gw.connect("alice", "acme") as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        with conn.cursor(binary=binary) as cur:
            cur.execute("SELECT * FROM kinds WHERE i = %s OR i IS NULL ORDER BY i NULLS LAST",
                        (42,))
            rows = cur.fetchall()
    assert rows[0] == EXPECTED_KINDS
    assert rows[1] == (None,) * len(EXPECTED_KINDS)


def test_parameters_of_many_types_pass_through(gw):
    params = (7, "it's \"quoted\"", decimal.Decimal("1.50"), b"\x00\x01", None,
              datetime.date(2020, 1, 2), [4, 5])
    with gw.connect("alice", "acme") as conn, conn.cursor(binary=True) as cur:
        cur.execute("SELECT %s::int, %s::text, %s::numeric, %s::bytea, %s::text, %s::date, "
                    "%s::int[]", params)
        assert cur.fetchone() == params


def test_prepared_statement_is_reused(gw):
    with gw.connect("bob", "globex") as conn:
        conn.prepare_threshold = 0  # prepare on first use
        results = []
        for customer in (1, 2, 1, 2, 1):
            with conn.cursor(binary=True) as cur:
                cur.execute("SELECT name, total FROM customers c JOIN orders o "
                            "ON o.customer_id = c.id WHERE c.id = %s", (customer,),
                            prepare=True)
                results.append(cur.fetchone())
        assert results == [("Gus Globex", 100), ("Gia Globex", 200)] * 2 + [("Gus Globex", 100)]
        # an error in a prepared statement leaves the others usable
        with pytest.raises(errors.DivisionByZero):
            conn.execute("SELECT 1 / %s", (0,), prepare=True)
        assert conn.execute("SELECT name FROM customers WHERE id = %s", (2,),
                            prepare=True).fetchone() == ("Gia Globex",)


def test_server_side_cursor_fetches_in_batches(gw):
    with gw.connect("alice", "acme", autocommit=False) as conn:
        with conn.cursor(name="walker") as cur:  # DECLARE ... CURSOR, then FETCH
            cur.itersize = 1
            cur.execute("SELECT id FROM customers ORDER BY id")
            assert [r[0] for r in cur] == [1, 2, 3]
        conn.rollback()


def test_copy_to_stdout(gw):
    with gw.connect("alice", "acme") as conn, conn.cursor() as cur:
        with cur.copy("COPY (SELECT id, name FROM customers ORDER BY id) TO STDOUT") as copy:
            data = b"".join(bytes(chunk) for chunk in copy)
    assert data.decode() == "1\tAda Acme\n2\tAbe Acme\n3\tAmy Acme\n"


def test_copy_binary_to_stdout(gw):
    with gw.connect("bob", "globex") as conn, conn.cursor() as cur:
        with cur.copy("COPY (SELECT id, name FROM customers ORDER BY id) TO STDOUT "
                      "(FORMAT binary)") as copy:
            copy.set_types(["int4", "text"])
            assert list(copy.rows()) == [(1, "Gus Globex"), (2, "Gia Globex")]


def test_multiple_statements_in_one_simple_query(gw):
    with gw.connect("alice", "acme") as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS a; SELECT name FROM tenant_marker; SELECT 2, 3")
        assert cur.fetchall() == [(1,)]
        assert cur.nextset()
        assert cur.fetchall() == [("acme",)]
        assert cur.nextset()
        assert cur.fetchall() == [(2, 3)]
        assert not cur.nextset()


def test_error_in_multi_statement_query_stops_it_and_session_stays_usable(gw):
    session = pgwire.Session(HOST, gw.port)
    session.startup("alice", "acme", gw.passwords["alice"])
    rows, error = session.simple_query("SELECT 1; SELECT 1/0; SELECT 3")
    assert rows == [["1"]] and error["C"] == "22012"
    rows, error = session.simple_query("SELECT name FROM tenant_marker")
    assert error is None and rows == [["acme"]]
    session.close()


@pytest.mark.parametrize("binary", [False, True])
def test_backend_errors_pass_through(gw, binary):
    with gw.connect("alice", "acme") as conn:
        with pytest.raises(errors.DivisionByZero) as info:
            conn.cursor(binary=binary).execute("SELECT 1 / %s", (0,))
        assert info.value.sqlstate == "22012"
        with pytest.raises(errors.UndefinedColumn):
            conn.execute("SELECT no_such_column FROM customers")
        assert tenant_of(conn) == "acme"


def test_error_inside_transaction_then_rollback(gw):
    with gw.connect("alice", "acme", autocommit=False) as conn:
        with pytest.raises(errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert tenant_of(conn) == "acme"


def test_notices_reach_the_client(gw):
    received = []
    with gw.connect("alice", "acme") as conn:
        # the Diagnostic is only valid inside the handler: copy what we check
        conn.add_notice_handler(
            lambda d: received.append((d.severity, d.sqlstate, d.message_primary)))
        conn.execute("COMMIT")  # outside a transaction: WARNING 25P01
        assert tenant_of(conn) == "acme"
    assert received == [("WARNING", "25P01", "there is no transaction in progress")]


def test_parameter_status_reports_server_settings(gw):
    with gw.connect("alice", "acme") as conn:
        assert conn.info.parameter_status("server_version")
        assert conn.info.parameter_status("client_encoding") == "UTF8"
        assert conn.info.backend_pid != 0  # BackendKeyData was sent


def tenant_of(conn):
    return conn.execute("SELECT name FROM tenant_marker").fetchone()[0]


# -- cancellation ----------------------------------------------------------


def cancel_when_running(conn, postgres, marker):
    """From another thread: wait until the statement runs on the backend, then cancel."""
    def worker():
        with postgres.connect() as su:
            wait_until(lambda: su.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s "
                "AND state = 'active' AND pid <> pg_backend_pid()",
                (f"%{marker}%",)).fetchone()[0], 10, "the statement to reach the backend")
        conn.cancel()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    return thread


def test_cancel_request_stops_a_running_query(gw, postgres):
    with gw.connect("alice", "acme") as conn:
        thread = cancel_when_running(conn, postgres, "pg_sleep(30) AS cancel_me")
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(30) AS cancel_me")
        assert time.monotonic() - started < 10
        thread.join(5)
        assert tenant_of(conn) == "acme"


def test_cancel_reaches_only_the_right_session(gw, postgres):
    with gw.connect("alice", "acme") as victim, gw.connect("alice", "acme") as bystander:
        thread = cancel_when_running(victim, postgres, "pg_sleep(30) AS victim")
        with pytest.raises(errors.QueryCanceled):
            victim.execute("SELECT pg_sleep(30) AS victim")
        thread.join(5)
        assert query_one(bystander, "SELECT 'alive' FROM pg_sleep(0.1)") == ("alive",)


def test_cancel_with_wrong_key_is_ignored(gw, postgres):
    with gw.connect("alice", "acme") as conn:
        pid = conn.info.backend_pid
        result = {}

        def run():
            result["row"] = conn.execute("SELECT 'done' FROM pg_sleep(1.5)").fetchone()

        thread = threading.Thread(target=run)
        thread.start()
        with socket.create_connection((HOST, gw.port)) as s:
            s.sendall(struct.pack("!IIII", 16, 80877102, pid, 12345))
        thread.join(10)
        assert result.get("row") == ("done",)


# -- streaming -------------------------------------------------------------

BIG_COPY = ("COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 10000000) g) "
            "TO STDOUT")


@pytest.mark.timeout(180)
def test_large_result_streams_with_bounded_memory(gw):
    """10 million rows (about 1 GB) read by a slow client: pgwarden must apply
    back-pressure instead of buffering the result."""
    baseline = rss_kb(gw.pid)
    psql = subprocess.Popen(
        ["psql", "-X", "-q", "-d", gw.conninfo("alice", "acme", sslmode="disable"),
         "-c", BIG_COPY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    peak, total = baseline, 0
    try:
        total += len(psql.stdout.read(1 << 16))
        # A stalled reader: if pgwarden kept reading from the backend it would
        # have buffered hundreds of MB by the end of this pause.
        pause_until = time.monotonic() + 3
        while time.monotonic() < pause_until:
            peak = max(peak, rss_kb(gw.pid))
            time.sleep(0.1)
        chunks = 0
        while True:
            chunk = psql.stdout.read(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            chunks += 1
            if chunks % 16 == 0:
                peak = max(peak, rss_kb(gw.pid))
        assert psql.wait(60) == 0, psql.stderr.read().decode()
    finally:
        if psql.poll() is None:
            psql.kill()
            psql.wait()
    digits = sum(9 * 10 ** (d - 1) * d for d in range(1, 8)) + 8  # 1 .. 10,000,000
    expected = digits + 10000000 * 102  # tab, 100 x, newline
    assert total == expected
    assert peak < 100 * 1024, f"pgwarden RSS reached {peak} kB (baseline {baseline} kB)"
    with gw.connect("alice", "acme") as conn:
        assert tenant_of(conn) == "acme"


def test_large_result_through_psycopg_is_complete(gw):
    with gw.connect("bob", "globex") as conn, conn.cursor(binary=True) as cur:
        cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 200000) g")
        count, last = 0, None
        for row in cur:
            count += 1
            last = row
    assert count == 200000
    assert last[0] == 200000


# --------------------------------------------------------------------------
# Pipelines and the parameter-type question (stmt_param.c)
# --------------------------------------------------------------------------
#
# A Parse that leaves a parameter untyped is preceded by a question to the
# backend, which closes an open pipeline with a Sync first. After an error
# earlier in the same pipeline, PostgreSQL skips everything up to the
# client's Sync; the Sync pgwarden inserts ended that skipping, so what the
# client sent after the error ran and its answers reached the client (a
# libpq or psycopg pipeline then read results it did not expect). Now the
# question's answer is not acted on when the pipeline had failed before
# its Sync (backend.c: PGW_ERR_PIPELINE_FAILED): the Parse is dropped
# without a word and the rest discarded up to the client's Sync.


def _pipe_message(kind, payload=b""):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def _pipe_parse(sql):
    return _pipe_message(b"P", b"\0" + sql.encode() + b"\0\0\0")


def _pipe_bind(*values):
    payload = b"\0\0" + struct.pack("!H", 0) + struct.pack("!H", len(values))
    for v in values:
        payload += struct.pack("!i", len(v)) + v
    return _pipe_message(b"B", payload + struct.pack("!H", 0))


_PIPE_EXEC = _pipe_message(b"E", b"\0\0\0\0\0")

PIPELINES = [
    pytest.param(_pipe_parse("SELECT $1 || 'a'") + _pipe_bind(b"x") + _PIPE_EXEC
                 + _pipe_parse("SELECT $1 || 'b'") + _pipe_bind(b"y") + _PIPE_EXEC
                 + _pipe_message(b"S"), id="two-untyped"),
    pytest.param(_pipe_parse("SELECT 1/0") + _pipe_bind() + _PIPE_EXEC
                 + _pipe_parse("SELECT $1 || 'c'") + _pipe_bind(b"x") + _PIPE_EXEC
                 + _pipe_message(b"S"), id="error-then-untyped"),
    pytest.param(_pipe_parse("SELECT $1 || 'd'") + _pipe_bind(b"x") + _PIPE_EXEC
                 + _pipe_parse("SELECT 1/0") + _pipe_bind() + _PIPE_EXEC
                 + _pipe_parse("SELECT $1 || 'e'") + _pipe_bind(b"y") + _PIPE_EXEC
                 + _pipe_message(b"S"), id="untyped-error-untyped"),
]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_a_pipeline_answers_as_postgresql_does(pgwarden, postgres, pipeline):
    """The message types a pipeline gets back through pgwarden are the ones
    PostgreSQL itself sends back (values aside)."""
    gw = pgwarden()

    def kinds(session):
        session.sock.sendall(pipeline)
        out = []
        while True:
            kind, _ = session.read_message()
            out.append(kind)
            if kind == b"Z":
                return out
    through = pgwire.Session(HOST, gw.port).startup("alice", "acme", "alice-secret")
    direct = pgwire.Session(HOST, postgres.port).startup("postgres", "acme")
    try:
        for _ in range(2):  # and the session goes on as PostgreSQL's does
            assert kinds(through) == kinds(direct)
    finally:
        through.close()
        direct.close()
