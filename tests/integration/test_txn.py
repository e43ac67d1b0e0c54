"""Transaction pooling (pool_mode = transaction): many clients on few backend
sessions, each client seeing exactly what it would see on a session of its
own -- its results, its prepared statements, its settings, its cancels.

Every test counts what a user would notice: wrong rows, an error, a
setting of one client showing up in another's results, a backend session
count above the pool size.
"""

import re
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

import pgwire
from conftest import HOST, wait_until


def tenant_of(conn):
    return conn.execute("SELECT name FROM tenant_marker").fetchone()[0]


def backend_sessions(postgres, dbname):
    with postgres.connect() as su:
        return su.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'reader' "
                          "AND datname = %s AND application_name <> 'pgwarden catalog'", (dbname,)).fetchone()[0]


def backend_pid(conn):
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def pool_row(gw, tenant="acme"):
    """The tenant's row of SHOW POOLS (the gateway needs admin_users = admin)."""
    with gw.connect("admin", "pgwarden") as admin:
        cur = admin.execute("SHOW POOLS")
        cols = [d.name for d in cur.description]
        rows = {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
    return rows.get(tenant)


@pytest.fixture(scope="module")
def gw(pgwarden):
    return pgwarden(settings={"pool_mode": "transaction", "pool_size": "5",
                              "pool_timeout": "60s"})


# --------------------------------------------------------------------------
# Sharing sessions
# --------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_two_hundred_psycopg_clients_share_five_sessions(gw, postgres):
    """200 clients connected at once, each running a few statements in and
    out of transactions, simple and extended protocol (psycopg binds its
    parameters), on pool_size = 5: every answer is the client's own and the
    backend never sees more than 5 sessions of the tenant."""
    opened = threading.Barrier(200, timeout=120)
    peak = {"acme": 0}
    # Sessions of gateways of earlier modules may still be going away.
    wait_until(lambda: backend_sessions(postgres, "acme") == 0, 30,
               "earlier modules' backend sessions to be gone")

    def client(n):
        user = ("alice", "carol")[n % 2]
        with gw.connect(user, "acme") as conn:
            opened.wait()  # all 200 are connected before any statement runs
            got = []
            got.append(conn.execute("SELECT %s::int + 1", (n,)).fetchone()[0] == n + 1)
            with conn.transaction():
                conn.execute("SELECT pg_sleep(0.01)")
                got.append(tenant_of(conn) == "acme")
                got.append(conn.execute("SELECT %s::text", (f"client {n}",)).fetchone()[0]
                           == f"client {n}")
            got.append(conn.execute(f"SELECT {n} AS n").fetchone()[0] == n)
            return all(got)

    def watch(stop):
        while not stop.is_set():
            peak["acme"] = max(peak["acme"], backend_sessions(postgres, "acme"))
            stop.wait(0.05)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,))
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(client, range(200), timeout=170))
    finally:
        stop.set()
        watcher.join()
    assert results.count(True) == 200
    assert 1 <= peak["acme"] <= 5, peak


def test_a_client_holds_its_session_only_inside_a_transaction(pgwarden, postgres):
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "1",
                            "pool_timeout": "2s"})
    with gw.connect("alice", "acme") as a, gw.connect("carol", "acme") as b:
        # Outside transactions both run on the one session, in turn.
        assert backend_pid(a) == backend_pid(b)
        with a.transaction():
            pid = backend_pid(a)
            # b waits for the session while a's transaction is open.
            with pytest.raises(psycopg.Error) as info:
                b.execute("SELECT 1")
            assert info.value.sqlstate == "53300", info.value
            assert backend_pid(a) == pid  # the same session all transaction long
        assert tenant_of(b) == "acme"  # free again once a committed
        assert backend_pid(b) == pid


def worker_of(conn):
    """The pgwarden worker a client is on: the process id of its
    BackendKeyData carries the worker's index + 1 above 22 bits of slot."""
    return conn.info.backend_pid >> 22


def clients_on_both_workers(gw, n_each=2, tries=64):
    """Connections until n_each are on each of pgwarden's two workers (the
    kernel spreads connections over the workers' listeners)."""
    by_worker, extra = {}, []
    for i in range(tries):
        conn = gw.connect(("alice", "carol")[i % 2], "acme")
        mine = by_worker.setdefault(worker_of(conn), [])
        (mine if len(mine) < n_each else extra).append(conn)
        if len(by_worker) == 2 and all(len(v) == n_each for v in by_worker.values()):
            break
    for conn in extra:
        conn.close()
    return by_worker


@pytest.mark.timeout(90)
def test_one_session_moves_between_workers_and_a_kill_stays_invisible(pgwarden, postgres):
    """workers = 2, pool_size = 1: clients of both workers take turns on the
    one session. An idle session stays on the worker that gave it back, so a
    client of the other worker takes it by mail (detached there, attached
    here): every turn answers with the client's own values on that one
    session, and a kill of the session between turns is invisible, whichever
    worker holds it idle and whichever worker's client comes next."""
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "1",
                            "pool_timeout": "10s", "workers": "2"})
    by_worker = clients_on_both_workers(gw)
    conns = [c for v in by_worker.values() for c in v]
    try:
        assert len(by_worker) == 2, "no client landed on the second worker"
        order = [by_worker[w][k] for k in range(2) for w in sorted(by_worker)]
        pid = backend_pid(order[0])
        for n in range(40):
            conn = order[n % len(order)]
            assert conn.execute("SELECT %s::int * 2", (n,)).fetchone()[0] == 2 * n
            with conn.transaction():
                assert backend_pid(conn) == pid  # one session, moved, never a second
                assert tenant_of(conn) == "acme"
        for n in range(6):
            idle_on = order[n % len(order)]  # the session is left idle on its worker
            assert tenant_of(idle_on) == "acme"
            with postgres.connect() as su:
                su.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE usename = 'reader' AND datname = 'acme'")
            wait_until(lambda: backend_sessions(postgres, "acme") == 0, 10,
                       "the backend to be gone")
            nxt = order[(n + 1 + n // 2) % len(order)]  # same worker or the other one
            assert nxt.execute("SELECT %s::int + 1", (n,)).fetchone()[0] == n + 1
            assert backend_sessions(postgres, "acme") == 1
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.timeout(60)
def test_a_second_wait_gets_its_whole_pool_timeout(pgwarden):
    """A client whose wait for a session was answered, and which waits
    again soon after, is refused only a whole pool_timeout after its second
    wait began: not when the first wait's time would have run out (its timer
    is left armed and serves the second wait)."""
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "1",
                            "pool_timeout": "2s", "admin_users": "admin"})
    with gw.connect("alice", "acme") as a, gw.connect("carol", "acme") as b:
        a.execute("BEGIN")
        a.execute("SELECT 1")  # a holds the one session
        with ThreadPoolExecutor(max_workers=1) as ex:
            first = ex.submit(lambda: b.execute("SELECT 41 + 1").fetchone()[0])
            wait_until(lambda: int(pool_row(gw)["waiting"]) == 1, 10, "b to wait")
            time.sleep(0.5)  # not a synchronization: the first wait lasts this long
            a.execute("COMMIT")
            assert first.result(timeout=10) == 42  # answered: b got the session
        a.execute("BEGIN")
        a.execute("SELECT 1")  # a holds it again
        began = time.monotonic()
        with pytest.raises(psycopg.Error) as info:
            b.execute("SELECT 2")
        waited = time.monotonic() - began
        assert info.value.sqlstate == "53300", info.value
        assert 1.8 <= waited < 8, f"refused after {waited:.2f}s with pool_timeout=2s"
        a.execute("COMMIT")
        assert b.execute("SELECT 3").fetchone()[0] == 3


def test_session_mode_is_unchanged(pgwarden):
    """pool_mode = session (the default) keeps a client on one session:
    prepared statements by their own names, settings, temp state."""
    gw = pgwarden(settings={"pool_size": "2"})
    with gw.connect("alice", "acme") as a, gw.connect("carol", "acme") as b:
        pa, pb = backend_pid(a), backend_pid(b)
        assert pa != pb
        for _ in range(5):
            assert backend_pid(a) == pa and backend_pid(b) == pb
        a.execute("PREPARE mine AS SELECT 42")
        assert a.execute("EXECUTE mine").fetchone()[0] == 42


def connect_prepared(gw, user, dbname="acme"):
    """psycopg preparing every statement at once (server-side, by name)."""
    return psycopg.connect(gw.conninfo(user, dbname), autocommit=True, prepare_threshold=0)


@pytest.mark.timeout(60)
def test_unnamed_statements_of_clients_with_other_settings_share_a_session(pgwarden):
    """Two clients with different settings (application_name) take turns on
    one session with the result cache on (its default): each turn the
    session is given the client's settings (pgwarden's own query) before
    the client's Parse of its unnamed statement, and the Bind, Describe and
    Execute the cache looks up wait behind that Parse. Every statement is
    answered, and with the client's own values; it used to hang at the first
    turn (the cache waited for the settings' ReadyForQuery, which wakes
    nobody, while the server held the Parse's answer for the Sync)."""
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "1",
                            "pool_timeout": "10s"})
    conns = [psycopg.connect(gw.conninfo(user, "acme") + f" application_name=app{n}",
                             autocommit=True, prepare_threshold=None)
             for n, user in enumerate(("alice", "carol"))]
    try:
        for i in range(20):
            for n, conn in enumerate(conns):
                got = conn.execute("SELECT %s::int * 10 + %s::int", (i, n)).fetchone()[0]
                assert got == i * 10 + n
                assert conn.execute("SHOW application_name").fetchone()[0] == f"app{n}"
    finally:
        for conn in conns:
            conn.close()


def test_tenant_may_choose_its_own_mode(pgwarden):
    # acme: session (the global default); globex: transaction
    gw = pgwarden(settings={"pool_size": "1", "pool_timeout": "2s"}, start=False)
    text = gw.config_text(settings={"pool_size": "1", "pool_timeout": "2s"})
    text = text.replace("[tenant.globex]", "[tenant.globex]\npool_mode = transaction")
    (gw.dir / "pgwarden.ini").write_text(text)
    gw.start()
    with gw.connect("bob", "globex") as a, gw.connect("carol", "globex") as b:
        assert backend_pid(a) == backend_pid(b)  # one session, shared
    with gw.connect("alice", "acme") as a:
        assert tenant_of(a) == "acme"
        with pytest.raises(psycopg.Error):  # session mode: the one session is a's
            with gw.connect("carol", "acme") as b:
                tenant_of(b)


# --------------------------------------------------------------------------
# Prepared statements
# --------------------------------------------------------------------------


def test_prepared_statements_survive_session_changes(pgwarden, postgres):
    """psycopg prepares a statement it has run prepare_threshold times and
    then only Binds it by name; in transaction mode the client lands on
    different sessions in turn, and every execution answers."""
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "3",
                            "max_prepared_statements": "2"})
    conns = [connect_prepared(gw, ("alice", "carol")[i % 2]) for i in range(6)]
    try:
        pids = set()
        hold = []
        for round_ in range(10):
            for i, conn in enumerate(conns):
                # Other clients hold sessions at times, so each lands elsewhere.
                if round_ % 3 == 0 and i == 0:
                    hold.append(gw.connect("alice", "acme"))
                    hold[-1].execute("BEGIN")
                    hold[-1].execute("SELECT 1")
                v = conn.execute("SELECT %s::int * 2 AS twice, %s::text AS who",
                                 (round_, f"c{i}")).fetchone()
                assert v == (round_ * 2, f"c{i}")
                n = conn.execute("SELECT count(*) FROM customers WHERE id > %s",
                                 (0,)).fetchone()[0]
                assert n == 3
                third = conn.execute(f"SELECT {i} + %s::int", (round_,)).fetchone()[0]
                assert third == i + round_
                pids.add(backend_pid(conn))
            while hold:
                h = hold.pop()
                h.execute("COMMIT")
                h.close()
        assert len(pids) > 1  # they really moved
    finally:
        for conn in conns:
            conn.close()


def test_deallocate_all_forgets_the_clients_statements(gw):
    """After a ROLLBACK psycopg sends DEALLOCATE ALL and prepares its
    statements again: in transaction mode that must work as on PostgreSQL
    (the client's names are gone, the statements prepare again)."""
    with connect_prepared(gw, "alice") as conn:
        for _ in range(3):
            assert conn.execute("SELECT %s::int", (7,)).fetchone() == (7,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                conn.execute("SELECT 1 / %s::int", (0,))
        for _ in range(3):
            assert conn.execute("SELECT %s::int", (8,)).fetchone() == (8,)
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                conn.execute("SELECT 1 / %s::int", (0,))
        assert conn.execute("SELECT %s::int * 2", (8,)).fetchone() == (16,)


def raw_login(gw, user="alice"):
    s = pgwire.Session(HOST, gw.port)
    s.startup(user, "acme", gw.passwords[user])
    return s


def message(kind, body=b""):
    return kind + struct.pack("!I", len(body) + 4) + body


def cstr(text):
    return text.encode() + b"\0"


def parse(name, sql):
    return message(b"P", cstr(name) + cstr(sql) + struct.pack("!H", 0))


def bind(stmt, params=(), portal=""):
    body = cstr(portal) + cstr(stmt) + struct.pack("!H", 0) + struct.pack("!H", len(params))
    for p in params:
        body += struct.pack("!I", len(p)) + p
    return message(b"B", body + struct.pack("!H", 0))


def execute(portal=""):
    return message(b"E", cstr(portal) + struct.pack("!I", 0))


def describe(kind, name):
    return message(b"D", kind + cstr(name))


def close(kind, name):
    return message(b"C", kind + cstr(name))


SYNC = message(b"S")


def until_ready(s, timeout=10):
    s.sock.settimeout(timeout)
    out = []
    while True:
        kind, payload = s.read_message()
        if kind in (b"N", b"S"):
            continue
        if kind == b"E":
            fields = {chr(p[0]): p[1:].decode() for p in payload.split(b"\0") if p}
            out.append("E:" + fields.get("C", ""))
        elif kind == b"D":
            (n,) = struct.unpack("!H", payload[:2])
            (ln,) = struct.unpack("!i", payload[2:6])
            out.append("D:" + payload[6:6 + ln].decode())
        elif kind == b"Z":
            out.append("Z:" + payload.decode())
            return out
        else:
            out.append(kind.decode())


def test_raw_protocol_statements_follow_the_client(gw):
    """By hand, as a driver does it: a named statement parsed once, bound
    in later batches (each possibly on another session), described, closed;
    names the client never prepared are refused as PostgreSQL does."""
    a, b = raw_login(gw, "alice"), raw_login(gw, "carol")
    try:
        a.sock.sendall(parse("s1", "SELECT $1::int * 3") + SYNC)
        assert until_ready(a) == ["1", "Z:I"]
        b.sock.sendall(parse("s1", "SELECT $1::text || '!'") + SYNC)  # same name, other text
        assert until_ready(b) == ["1", "Z:I"]
        for i in range(5):
            # b holds a session in a transaction now and then: a moves.
            if i % 2:
                b.sock.sendall(message(b"Q", cstr("BEGIN")))
                assert until_ready(b) == ["C", "Z:T"]
            a.sock.sendall(bind("s1", [str(i).encode()]) + execute() + SYNC)
            assert until_ready(a) == ["2", f"D:{i * 3}", "C", "Z:I"]
            b.sock.sendall(bind("s1", [b"x"]) + execute() + SYNC)
            want = ["2", "D:x!", "C", "Z:T" if i % 2 else "Z:I"]
            assert until_ready(b) == want
            if i % 2:
                b.sock.sendall(message(b"Q", cstr("COMMIT")))
                assert until_ready(b) == ["C", "Z:I"]
        a.sock.sendall(describe(b"S", "s1") + SYNC)
        assert until_ready(a) == ["t", "T", "Z:I"]
        # A duplicate name is refused, and the batch skips to Sync.
        a.sock.sendall(parse("s1", "SELECT 2") + bind("s1", [b"1"]) + execute() + SYNC)
        assert until_ready(a) == ["E:42P05", "Z:I"]
        a.sock.sendall(close(b"S", "s1") + SYNC)
        assert until_ready(a) == ["3", "Z:I"]
        a.sock.sendall(bind("s1", [b"1"]) + execute() + SYNC)
        assert until_ready(a) == ["E:26000", "Z:I"]
        # Another client's statement is not reachable under its server name.
        a.sock.sendall(bind("pgw_0000000000000000") + execute() + SYNC)
        assert until_ready(a) == ["E:26000", "Z:I"]
        # The unnamed statement, bound in a later batch.
        a.sock.sendall(parse("", "SELECT $1::int + 100") + SYNC)
        assert until_ready(a) == ["1", "Z:I"]
        b.sock.sendall(parse("", "SELECT 'b unnamed'") + SYNC)
        assert until_ready(b) == ["1", "Z:I"]
        a.sock.sendall(bind("", [b"1"]) + execute() + SYNC)
        assert until_ready(a) == ["2", "D:101", "C", "Z:I"]
        # A simple Query drops the unnamed statement, as in PostgreSQL.
        a.sock.sendall(message(b"Q", cstr("SELECT 1")))
        assert until_ready(a) == ["T", "D:1", "C", "Z:I"]
        a.sock.sendall(bind("", [b"1"]) + execute() + SYNC)
        assert until_ready(a) == ["E:26000", "Z:I"]
    finally:
        a.close()
        b.close()


def test_a_query_inside_a_failed_extended_batch_is_skipped(gw, postgres):
    """Parse/Bind(wrong parameter count)/Execute/Query/Sync: PostgreSQL skips
    the Query while it waits for Sync; pgwarden models that exactly, and
    the session is usable (and given back) afterwards."""
    seq = (parse("", "select $1::int") + bind("", [b"1", b"2"]) + execute()
           + message(b"Q", cstr("select 1")) + SYNC)
    direct = pgwire.Session(HOST, postgres.port).startup("reader", "acme")
    try:
        direct.sock.sendall(seq)
        reference = until_ready(direct)
    finally:
        direct.close()
    assert reference == ["1", "E:08P01", "Z:I"]
    s = raw_login(gw)
    try:
        s.sock.sendall(seq)
        assert until_ready(s) == reference
        s.sock.sendall(message(b"Q", cstr("DELETE FROM customers")))
        assert until_ready(s, timeout=5) == ["E:42501", "Z:I"]
        s.sock.sendall(message(b"Q", cstr("SELECT 2")))
        assert until_ready(s, timeout=5) == ["T", "D:2", "C", "Z:I"]
    finally:
        s.close()


def test_sql_prepare_keeps_the_client_on_its_session(pgwarden):
    """SQL-level PREPARE and WITH HOLD cursors live in the server session:
    the client keeps it until they are gone, then shares again."""
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "2",
                            "pool_timeout": "2s"})
    with gw.connect("alice", "acme") as a, gw.connect("carol", "acme") as b:
        a.execute("PREPARE mine AS SELECT 42")
        pid = backend_pid(a)
        for _ in range(5):
            assert b.execute("SELECT 1").fetchone() == (1,)
            assert a.execute("EXECUTE mine").fetchone() == (42,)
            assert backend_pid(a) == pid
        assert backend_pid(b) != pid
        a.execute("DEALLOCATE mine")
        a.execute("DECLARE c CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 3) g")
        assert a.execute("FETCH 2 FROM c").fetchall() == [(1,), (2,)]
        assert b.execute("SELECT 1").fetchone() == (1,)
        assert a.execute("FETCH 1 FROM c").fetchall() == [(3,)]
        a.execute("CLOSE c")
        # Unpinned: with a in a transaction and b in another, both sessions are used.
        with a.transaction(), b.transaction():
            assert backend_pid(a) != backend_pid(b)


# --------------------------------------------------------------------------
# Settings stay per client
# --------------------------------------------------------------------------


def test_a_clients_set_is_not_visible_to_others(pgwarden):
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "1"})
    with gw.connect("alice", "acme") as a, gw.connect("carol", "acme") as b:
        default_tz = b.execute("SHOW TimeZone").fetchone()[0]
        a.execute("SET TimeZone = 'Asia/Kathmandu'")
        a.execute("SET DateStyle = 'SQL, DMY'")
        for _ in range(5):
            # One session for both: every statement lands on it in turn.
            assert a.execute("SHOW TimeZone").fetchone()[0] == "Asia/Kathmandu"
            assert b.execute("SHOW TimeZone").fetchone()[0] == default_tz
            ts_a = a.execute("SELECT '2024-01-01 00:00:00+00'::timestamptz::text").fetchone()[0]
            ts_b = b.execute("SELECT '2024-01-01 00:00:00+00'::timestamptz::text").fetchone()[0]
            assert ts_a.startswith("01/01/2024 05:45:00"), ts_a
            assert "2024-01-01" in ts_b and "05:45" not in ts_b, ts_b
        a.execute("RESET TimeZone")
        assert a.execute("SHOW TimeZone").fetchone()[0] == default_tz
        assert a.execute("SHOW DateStyle").fetchone()[0] == "SQL, DMY"


def test_pinned_settings_stay_pinned(pgwarden):
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "1"})
    with gw.connect("alice", "acme") as a:
        a.execute("SET TimeZone = 'UTC'")
        assert a.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        assert a.execute("SHOW search_path").fetchone()[0] == "public"
        with pytest.raises(psycopg.Error) as info:
            a.execute("SET default_transaction_read_only = off")
        assert info.value.sqlstate == "42501"
        assert a.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"


# --------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------


def test_a_backend_killed_between_transactions_is_invisible(pgwarden, postgres):
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "2"})
    conns = [gw.connect("alice", "acme") for _ in range(4)]
    try:
        for conn in conns:
            assert tenant_of(conn) == "acme"
        for _ in range(3):
            with postgres.connect() as su:
                su.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE usename = 'reader' AND datname = 'acme'")
            wait_until(lambda: backend_sessions(postgres, "acme") == 0, 10,
                       "the backends to be gone")
            for conn in conns:
                assert tenant_of(conn) == "acme"  # no error: they held no session
    finally:
        for conn in conns:
            conn.close()


def test_an_idle_session_whose_server_goes_away_is_dropped_at_once(pgwarden, postgres):
    """An idle session stays watched on its worker: when its server goes
    away between transactions, SHOW POOLS stops counting it without any
    client having to try it first, and the next statement gets a new one."""
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "2",
                            "admin_users": "admin"})
    with gw.connect("alice", "acme") as conn:
        old = backend_pid(conn)
        wait_until(lambda: int(pool_row(gw)["idle"]) == 1, 10, "the session to be idle")
        assert int(pool_row(gw)["sessions"]) == 1
        with postgres.connect() as su:
            su.execute("SELECT pg_terminate_backend(%s)", (old,))
        wait_until(lambda: int(pool_row(gw)["sessions"]) == 0, 10,
                   "the pool to drop the session whose server went away")
        assert int(pool_row(gw)["idle"]) == 0
        assert backend_pid(conn) != old  # a new session, and no error
        assert tenant_of(conn) == "acme"


def test_backend_lost_inside_a_transaction_is_reported(gw, postgres):
    with gw.connect("alice", "acme", application_name="txn_lost") as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT 1")
        with postgres.connect() as su:
            su.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'txn_lost'")
        with pytest.raises(psycopg.OperationalError) as info:
            conn.execute("SELECT 2")
        assert info.value.sqlstate in (None, "08006", "57P01"), info.value


# --------------------------------------------------------------------------
# Cancel, also through another instance
# --------------------------------------------------------------------------


def send_cancel(port, pid, key):
    import socket
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
        s.settimeout(5)
        try:
            s.recv(1)  # the server closes it
        except OSError:
            pass


@pytest.mark.timeout(60)
def test_cancel_reaches_the_statement_through_a_peer(pgwarden):
    """Two instances behind one address, each with its peer_id and the
    other in [peers]: a CancelRequest that lands on the wrong one is
    forwarded, and cancels the statement (57014) on whichever session the
    transaction-pooled client runs it."""
    one, two = pgwarden(start=False), pgwarden(start=False)
    for me, other, gw in ((1, 2, one), (2, 1, two)):
        peer = one if other == 1 else two
        gw.write_config(settings={"pool_mode": "transaction", "pool_size": "2",
                                  "peer_id": str(me)},
                        extra=f"\n[peers]\n{other} = {HOST}:{peer.port}\n")
    one.start()
    two.start()
    s = raw_login(one)
    try:
        pid, key = s.backend_key
        assert key >> 24 == 1  # the issuing instance's id in the key
        s.send_query("SELECT pg_sleep(30)")
        started = time.monotonic()
        result = {}

        def read():
            result["out"] = until_ready(s, timeout=40)

        reader = threading.Thread(target=read)
        reader.start()
        # Sent to the other instance until it lands (one sent before the
        # statement reaches the backend cancels nothing).
        while reader.is_alive() and time.monotonic() - started < 20:
            send_cancel(two.port, pid, key)
            reader.join(1)
        reader.join(5)
        assert result.get("out") and "E:57014" in result["out"], result
        assert time.monotonic() - started < 20
    finally:
        s.close()


def test_show_pools_and_clients_report_the_mode_and_prepared_statements(pgwarden):
    gw = pgwarden(settings={"pool_mode": "transaction", "pool_size": "2",
                            "admin_users": "admin"})
    with connect_prepared(gw, "alice") as conn:
        for i in range(3):
            assert conn.execute("SELECT %s::int", (i,)).fetchone() == (i,)
        assert conn.execute("SELECT %s::text", ("x",)).fetchone() == ("x",)
        with gw.connect("admin", "pgwarden") as admin:
            cur = admin.execute("SHOW POOLS")
            cols = [d.name for d in cur.description]
            pools = {r[0]: dict(zip(cols, r)) for r in cur.fetchall()}
            assert pools["acme"]["pool_mode"] == "transaction"
            assert int(pools["acme"]["prepared"]) >= 2
            assert int(pools["acme"]["cl_idle"]) >= 1
            cur = admin.execute("SHOW CLIENTS")
            cols = [d.name for d in cur.description]
            clients = [dict(zip(cols, r)) for r in cur.fetchall()]
            mine = [c for c in clients if c["user"] == "alice"]
            assert mine and int(mine[0]["prepared"]) == 2, clients
            assert mine[0]["backend_pid"] is None  # between transactions: no session
