"""Idle clients park: an idle plain-socket client drops its bufferevent and
keeps one read event on its socket (src/client.c, "parking an idle client").

What a user would notice if parking were wrong: a client that was idle and
then sends again gets no answer, a wrong one, or loses bytes -- bytes that
arrived just as it went idle, or half a message that was buffered when it
looked idle. These tests drive exactly those moments, in both pool modes,
over plain sockets and TLS (which never parks), and watch SHOW STATS'
clients_parked to know a client has parked before they go on (polled, no
sleeps).
"""

import socket
import struct

import pytest

import pgwire
from conftest import HOST, wait_until

MODES = ["session", "transaction"]


@pytest.fixture(scope="module")
def gateways(pgwarden, certificate):
    cert, key = certificate
    made = {}

    def get(mode):
        if mode not in made:
            made[mode] = pgwarden(settings={
                "pool_mode": mode, "admin_users": "admin", "client_tls": "allow",
                "tls_cert_file": str(cert), "tls_key_file": str(key)})
            # A tenant's first client waits for (and, session-pooled, keeps)
            # the session that tells pgwarden the backend's parameters: let
            # one come and go, so the tests' clients are ordinary ones.
            for user, dbname in (("alice", "acme"), ("bob", "globex")):
                with made[mode].connect(user, dbname, sslmode="disable"):
                    pass
        return made[mode]

    return get


def parked(gw):
    with gw.connect("admin", "pgwarden") as admin:
        return int(dict(admin.execute("SHOW STATS").fetchall())["clients_parked"])


def raw_session(gw, user="alice", dbname="acme"):
    s = pgwire.Session(HOST, gw.port)
    s.startup(user, dbname, gw.passwords[user])
    return s


def read_reply(session):
    """The rows and error up to the next ReadyForQuery of a sent Query."""
    rows, error = [], None
    while True:
        kind, payload = session.read_message()
        if kind == b"D":
            (n,) = struct.unpack("!i", payload[2:6])
            rows.append(payload[6:6 + n].decode())
        elif kind == b"E":
            error = pgwire.Session._fields(payload)
        elif kind == b"Z":
            return rows, error


@pytest.mark.parametrize("mode", MODES)
def test_a_client_idle_after_login_answers_when_it_speaks(gateways, mode):
    gw = gateways(mode)
    base = parked(gw)
    s = raw_session(gw)
    wait_until(lambda: parked(gw) >= base + 1, 10, "the new idle client to park")
    rows, error = s.simple_query("SELECT name FROM tenant_marker")
    assert error is None and rows == [["acme"]]
    s.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_client_idle_after_statements_resumes_with_its_state(gateways, mode):
    gw = gateways(mode)
    base = parked(gw)
    with gw.connect("bob", "globex", sslmode="disable") as conn:
        conn.execute("SET TimeZone = 'Asia/Tokyo'")
        assert conn.execute("SELECT name FROM tenant_marker").fetchone()[0] == "globex"
        if mode == "transaction":
            # Between transactions it holds no session: it parks.
            wait_until(lambda: parked(gw) >= base + 1, 10, "the client to park between transactions")
        for _ in range(3):
            assert conn.execute("SHOW TimeZone").fetchone()[0] == "Asia/Tokyo"
            assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 2
        with conn.transaction():
            assert conn.execute("SELECT name FROM tenant_marker").fetchone()[0] == "globex"


@pytest.mark.parametrize("mode", MODES)
def test_pipelined_queries_right_after_login_are_all_answered(gateways, mode):
    """The hello is written and the client parks at once: a Query sent the
    moment ReadyForQuery arrives (or already on its way) is never lost."""
    gw = gateways(mode)
    for i in range(30):
        s = raw_session(gw, "carol", "globex" if i % 2 else "acme")
        s.sock.sendall(b"".join(
            b"Q" + struct.pack("!I", 4 + len(q) + 1) + q + b"\0"
            for q in (b"SELECT name FROM tenant_marker", b"SELECT %d" % i)))
        assert read_reply(s) == (["globex" if i % 2 else "acme"], None)
        assert read_reply(s) == ([str(i)], None)
        s.close()


@pytest.mark.parametrize("mode", MODES)
def test_bytes_sent_to_a_parked_client_in_one_burst_are_all_answered(gateways, mode):
    gw = gateways(mode)
    base = parked(gw)
    s = raw_session(gw)
    wait_until(lambda: parked(gw) >= base + 1, 10, "the client to park")
    burst = b"".join(b"Q" + struct.pack("!I", 4 + len(q) + 1) + q + b"\0"
                     for q in (b"SELECT %d" % i for i in range(50)))
    s.sock.sendall(burst)
    for i in range(50):
        assert read_reply(s) == ([str(i)], None)
    if mode == "transaction":
        # Between transactions it holds no session, so it parks again a
        # whole idle delay later (session-pooled, it keeps the session the
        # burst linked, and stays awake).
        wait_until(lambda: parked(gw) >= base + 1, 10, "the client to park again")
        s.sock.sendall(burst)
        for i in range(50):
            assert read_reply(s) == ([str(i)], None)
    s.close()


@pytest.fixture(scope="module")
def clock(pgwarden):
    """tick() returns once a whole idle delay has passed: a transaction-mode
    client on a gateway of its own parks that long after its last statement
    (a session-mode client that ran one keeps its session and never does)."""
    gw = pgwarden(settings={"pool_mode": "transaction", "admin_users": "admin"})
    with gw.connect("bob", "globex", sslmode="disable"):
        pass
    s = raw_session(gw, "bob", "globex")
    wait_until(lambda: parked(gw) == 1, 10, "the clock client to park after login")

    def tick():
        assert s.simple_query("SELECT 1") == ([["1"]], None)
        assert parked(gw) == 0
        wait_until(lambda: parked(gw) == 1, 10, "the clock client to park")

    yield tick
    s.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cut", [3, 9])  # inside the header, inside the body
def test_half_a_message_buffered_is_not_idle(gateways, clock, mode, cut):
    """A client with part of a message in its input is not idle: parking it
    would free the buffered bytes and the rest would arrive as garbage."""
    gw = gateways(mode)
    base = parked(gw)
    half = raw_session(gw)
    wait_until(lambda: parked(gw) == base + 1, 10, "the new client to park")
    query = b"SELECT name FROM tenant_marker"
    message = b"Q" + struct.pack("!I", 4 + len(query) + 1) + query + b"\0"
    half.sock.sendall(message[:cut])
    wait_until(lambda: parked(gw) == base, 10, "the half-sent client to wake")
    clock()  # a whole idle delay has passed with half's bytes buffered
    assert parked(gw) == base, "a client with half a message buffered parked"
    half.sock.sendall(message[cut:])
    assert read_reply(half) == (["acme"], None)
    half.close()


@pytest.mark.parametrize("mode", MODES)
def test_tls_clients_do_not_park_and_stay_usable(gateways, mode):
    gw = gateways(mode)
    base = parked(gw)
    with gw.connect("alice", "acme", sslmode="require") as tls_conn:
        assert tls_conn.pgconn.ssl_in_use
        plain = raw_session(gw, "bob", "globex")
        if mode == "transaction":
            # Both go idle after a statement (in session mode a statement
            # would link a session, and neither would park).
            assert tls_conn.execute("SELECT name FROM tenant_marker").fetchone()[0] == "acme"
            assert plain.simple_query("SELECT 2") == ([["2"]], None)
        wait_until(lambda: parked(gw) >= base + 1, 10, "the plain client to park")
        assert parked(gw) == base + 1, "the idle TLS client parked"
        for _ in range(3):
            assert tls_conn.execute("SELECT name FROM tenant_marker").fetchone()[0] == "acme"
        assert plain.simple_query("SELECT 3") == ([["3"]], None)
        plain.close()


def test_a_parked_client_that_disconnects_is_gone(gateways):
    gw = gateways("session")
    base = parked(gw)
    s = raw_session(gw)
    wait_until(lambda: parked(gw) >= base + 1, 10, "the client to park")
    s.sock.shutdown(socket.SHUT_RDWR)
    s.sock.close()
    wait_until(lambda: parked(gw) == base, 10, "the parked client to be closed")
    with gw.connect("alice", "acme", sslmode="disable") as conn:
        assert conn.execute("SELECT name FROM tenant_marker").fetchone()[0] == "acme"
