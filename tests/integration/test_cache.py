"""The result cache (mode = memory) through real clients: what a hit returns on
each protocol, what is never cached, what keys keep apart, limits and
lifetimes, single flight, and the admin console's view of it.

Whether a statement was a hit, a miss or a bypass is read from the audit log,
which pgwarden writes for each one; what a user would notice (the rows, the
types, fresh or stale data, how many times the backend ran a query) is
asserted on its own. Tests make their own tables (cache_* in acme and globex)
so that data they change directly never shows in another module.
"""

import struct
import threading
import time
import urllib.request

import pytest
from psycopg import errors

import pgwire
from askutil import audit_records
from cacheutil import Audit, extended, lock_waiters, outcomes, simple
from conftest import HOST, free_port, wait_until

TABLE_SQL = """
DROP TABLE IF EXISTS cache_items, cache_flight;
CREATE TABLE cache_items (
    id integer PRIMARY KEY, label text NOT NULL, secret text, n integer,
    at timestamptz NOT NULL, d date NOT NULL, raw bytea);
CREATE TABLE cache_flight (id integer PRIMARY KEY, v text);
INSERT INTO cache_flight SELECT g, 'v' || g FROM generate_series(1, 100) g;
GRANT SELECT ON cache_items, cache_flight TO reader;
"""

ROWS = {
    "acme": [(1, "acme one", "a-secret-1", 10), (2, "acme two", "a-secret-2", 20),
             (3, "acme three", "a-secret-3", 30)],
    "globex": [(1, "globex one", "g-secret-1", 11), (2, "globex two", "g-secret-2", 22)],
}

CACHE = "\n[cache]\nmode = memory\n"


@pytest.fixture(scope="module")
def items(postgres):
    for tenant, rows in ROWS.items():
        with postgres.connect(tenant) as conn:
            conn.execute(TABLE_SQL)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO cache_items VALUES (%s, %s, %s, %s, '2024-01-15 10:00+00', "
                    "'2024-02-29', '\\x00ff')", rows)
    yield postgres
    for tenant in ROWS:
        with postgres.connect(tenant) as conn:
            conn.execute("DROP TABLE IF EXISTS cache_items, cache_flight")


def start(pgwarden, tmp_path_factory, cache="", settings=None, extra=""):
    """A pgwarden auditing to a file, with [cache] mode = memory and more."""
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    base = {"audit_log": str(audit), "pool_size": "30", "admin_users": "admin"}
    base.update(settings or {})
    gw = pgwarden(settings=base, extra=CACHE + cache + extra)
    gw.audit = Audit(audit, gw)
    return gw


@pytest.fixture(scope="module")
def gw(pgwarden, items, tmp_path_factory):
    return start(pgwarden, tmp_path_factory)


# --------------------------------------------------------------------------
# What a hit returns
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["simple", "extended", "prepared", "binary"])
def test_a_hit_returns_the_same_rows_and_types_as_the_miss(gw, protocol):
    cols = f"id, label, n, at, d, raw, n::numeric / 7 AS ratio_{protocol}, ARRAY[id, n] AS pair"
    with gw.connect("alice", "acme") as conn:
        if protocol == "simple":
            sql = f"SELECT {cols} FROM cache_items WHERE id <= 2 ORDER BY id"
            results, how, _ = outcomes(gw, sql, lambda: simple(conn, sql))
        else:
            sql = f"SELECT {cols} FROM cache_items WHERE id <= $1 ORDER BY id"
            query = sql.replace("$1", "%s")
            results, how, _ = outcomes(gw, sql, lambda: extended(
                conn, query, (2,), prepare=protocol == "prepared", binary=protocol == "binary"))
    assert how == ["miss", "hit"]
    assert results[0] == results[1]
    desc, rows = results[1]
    assert [r[:3] for r in rows] == [(1, "acme one", 10), (2, "acme two", 20)]
    assert rows[0][5] == b"\x00\xff" and rows[0][7] == [1, 10]


def raw_messages(session, count):
    """The next messages up to the count-th ReadyForQuery, as (type, bytes)."""
    out = []
    while True:
        kind, payload = session.read_message()
        out.append((kind, payload))
        if kind == b"Z":
            count -= 1
            if count == 0:
                return out


def message(kind, payload=b""):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def test_a_hit_is_replayed_byte_for_byte_on_both_protocols(gw):
    session = pgwire.Session(HOST, gw.port).startup("alice", "acme", "alice-secret")
    try:
        sql = "SELECT id, label, at FROM cache_items WHERE 'bytes' <> '' ORDER BY id"
        since = gw.audit.mark()
        session.send_query(sql)
        first = raw_messages(session, 1)
        session.send_query(sql)
        second = raw_messages(session, 1)
        assert first == second
        assert [k for k, _ in first] == [b"T"] + [b"D"] * 3 + [b"C", b"Z"]
        assert gw.audit.cache_of(since, sql, 2)[0] == ["miss", "hit"]

        # Parse, Bind (text id, binary results), Describe portal, Execute, Sync
        xsql = "SELECT id, label FROM cache_items WHERE id = $1 AND 'bytes' <> ''"
        bind = (b"\0\0" + struct.pack("!HH", 1, 0) + struct.pack("!HI", 1, 1) + b"2"
                + struct.pack("!HH", 1, 1))
        pipeline = (message(b"P", b"\0" + xsql.encode() + b"\0\0\0") + message(b"B", bind)
                    + message(b"D", b"P\0") + message(b"E", b"\0\0\0\0\0") + message(b"S"))
        since = gw.audit.mark()
        session.sock.sendall(pipeline)
        first = raw_messages(session, 1)
        session.sock.sendall(pipeline)
        second = raw_messages(session, 1)
        assert first == second
        assert [k for k, _ in first] == [b"1", b"2", b"T", b"D", b"C", b"Z"]
        assert first[3][1] == struct.pack("!HI", 2, 4) + struct.pack("!i", 2) + \
            struct.pack("!I", 8) + b"acme two"
        hows, _ = gw.audit.cache_of(since, xsql, 2)
        assert hows == ["miss", "hit"]
        # Describe of the statement still answers, and a hit without Describe
        # sends no row description.
        session.sock.sendall(message(b"D", b"S\0") + message(b"B", bind)
                             + message(b"E", b"\0\0\0\0\0") + message(b"S"))
        got = raw_messages(session, 1)
        assert [k for k, _ in got] == [b"t", b"T", b"2", b"D", b"C", b"Z"]
    finally:
        session.close()


def test_prepared_statements_key_on_their_parameter_values(gw):
    sql = "SELECT label FROM cache_items WHERE 'values' <> '' AND id = $1"
    with gw.connect("alice", "acme") as conn:
        since = gw.audit.mark()
        got = [extended(conn, sql.replace("$1", "%s"), (i,), prepare=True)[1]
               for i in (1, 2, 1, 2, 3)]
        hows, _ = gw.audit.cache_of(since, sql, 5)
    assert got == [[("acme one",)], [("acme two",)], [("acme one",)], [("acme two",)],
                   [("acme three",)]]
    assert hows == ["miss", "miss", "hit", "hit", "miss"]


# --------------------------------------------------------------------------
# What keys keep apart
# --------------------------------------------------------------------------


def test_a_tenants_entry_never_answers_another_tenant(gw):
    sql = "SELECT label FROM cache_items WHERE 'tenants' <> '' ORDER BY id"
    since = gw.audit.mark()
    answers = {}
    for dbname in ("acme", "globex", "acme", "globex"):
        with gw.connect("carol", dbname) as conn:  # one user of both tenants
            answers.setdefault(dbname, []).append(simple(conn, sql)[1])
    recs = gw.audit.records(since, sql, 4)
    by_tenant = {t: [r["cache"] for r in recs if r["tenant"] == t] for t in ("acme", "globex")}
    assert answers["acme"] == [[("acme one",), ("acme two",), ("acme three",)]] * 2
    assert answers["globex"] == [[("globex one",), ("globex two",)]] * 2
    assert by_tenant == {"acme": ["miss", "hit"], "globex": ["miss", "hit"]}


def test_two_users_of_one_tenant_share_entries(gw):
    sql = "SELECT label FROM cache_items WHERE 'users' <> '' AND id = 3"
    since = gw.audit.mark()
    for user in ("alice", "carol"):
        with gw.connect(user, "acme") as conn:
            assert simple(conn, sql)[1] == [("acme three",)]
    assert gw.audit.cache_of(since, sql, 2)[0] == ["miss", "hit"]


def direct_value(items, setting, value, sql):
    """What PostgreSQL itself answers for sql under one setting."""
    with items.connect("acme") as direct:
        direct.execute(set_statement(setting, value))
        return direct.execute(sql).fetchone()[0]


def set_statement(setting, value):
    return f"SET {setting} {value}" if setting == "TIME ZONE" else f"SET {setting} TO {value}"


@pytest.mark.parametrize("setting, values, sql", [
    ("TIME ZONE", ["'UTC'", "'Asia/Tokyo'"], "SELECT at::text FROM cache_items WHERE id = 1"),
    ("DateStyle", ["'ISO, MDY'", "'German, DMY'"], "SELECT d::text FROM cache_items WHERE id = 1"),
    # not reported by the server (no ParameterStatus): pgwarden reads it
    ("extra_float_digits", ["1", "-3"],
     "SELECT (n / 3.0)::float8::text FROM cache_items WHERE id = 1"),
    ("bytea_output", ["hex", "escape"], "SELECT raw::text FROM cache_items WHERE id = 1"),
])
def test_a_changed_setting_gets_its_own_entry(gw, items, setting, values, sql):
    expected = [direct_value(items, setting, v, sql) for v in values]
    assert expected[0] != expected[1]
    with gw.connect("alice", "acme") as conn:
        since = gw.audit.mark()
        got = []
        for value in values + values:
            conn.execute(set_statement(setting, value))
            got.append(simple(conn, sql)[1][0][0])
        hows, _ = gw.audit.cache_of(since, sql, 4)
    assert got == expected + expected
    assert hows == ["miss", "miss", "hit", "hit"]


def test_a_setting_rolled_back_is_not_taken_for_the_session(gw, items):
    sql = "SELECT (n / 7.0)::float8::text FROM cache_items WHERE 'rollback' <> '' AND id = 2"
    usual = direct_value(items, "extra_float_digits", "1", sql)
    short = direct_value(items, "extra_float_digits", "-5", sql)
    assert usual != short
    with gw.connect("alice", "acme") as conn:
        assert simple(conn, sql)[1] == [(usual,)]
        conn.execute("BEGIN")
        conn.execute("SET extra_float_digits = -5")
        assert simple(conn, sql)[1] == [(short,)]
        conn.execute("ROLLBACK")
        assert simple(conn, sql)[1] == [(usual,)]
        conn.execute("SET extra_float_digits = -5")
        assert simple(conn, sql)[1] == [(short,)]
        conn.execute("RESET ALL")
        assert simple(conn, sql)[1] == [(usual,)]


# --------------------------------------------------------------------------
# What is never cached
# --------------------------------------------------------------------------


@pytest.mark.parametrize("expr", ["now()", "random()", "clock_timestamp()", "current_date",
                                  "'today'::date", "timeofday()"])
def test_the_clock_and_randomness_are_never_cached(gw, expr):
    sql = f"SELECT {expr}::text AS v, label FROM cache_items WHERE id = 1"
    with gw.connect("alice", "acme") as conn:
        since = gw.audit.mark()
        values = [simple(conn, sql)[1][0][0] for _ in range(3)]
        hows, recs = gw.audit.cache_of(since, sql, 3)
    assert hows == ["bypass"] * 3
    assert all("not cacheable" in r["cache_reason"] for r in recs), recs
    if expr not in ("current_date", "'today'::date"):
        assert len(set(values)) == 3, values


def test_statements_inside_a_transaction_are_never_answered_from_the_cache(gw, items):
    sql = "SELECT label FROM cache_items WHERE 'transaction' <> '' AND id = 2"
    with gw.connect("alice", "acme") as conn, items.connect("acme") as direct:
        since = gw.audit.mark()
        assert simple(conn, sql)[1] == [("acme two",)]
        direct.execute("UPDATE cache_items SET label = 'acme two, changed' WHERE id = 2")
        try:
            # outside a transaction: the entry (now stale) answers
            assert simple(conn, sql)[1] == [("acme two",)]
            conn.execute("BEGIN")
            assert simple(conn, sql)[1] == [("acme two, changed",)]
            conn.execute("COMMIT")
            with conn.transaction():
                assert extended(conn, sql.replace("2", "%s", 1), (2,))[1] == \
                    [("acme two, changed",)]
        finally:
            direct.execute("UPDATE cache_items SET label = 'acme two' WHERE id = 2")
        hows, recs = gw.audit.cache_of(since, sql, 3)
    assert hows == ["miss", "hit", "bypass"]
    assert "transaction" in recs[2]["cache_reason"]


def test_cursors_and_settings_statements_are_not_cached(gw):
    with gw.connect("alice", "acme", autocommit=False) as conn:
        with conn.cursor(name="c1") as cur:
            cur.execute("SELECT id FROM cache_items ORDER BY id")
            assert [r[0] for r in cur] == [1, 2, 3]
        conn.rollback()
    with gw.connect("alice", "acme") as conn:
        since = gw.audit.mark()
        for _ in range(2):
            assert simple(conn, "SHOW DateStyle")[1] == [("ISO, MDY",)]
        hows, _ = gw.audit.cache_of(since, "SHOW DateStyle", 2)
    assert hows == ["bypass", "bypass"]


# --------------------------------------------------------------------------
# Reload, sizes, lifetimes
# --------------------------------------------------------------------------


def reloaded(gw, count):
    wait_until(lambda: gw.log_text().count("configuration reloaded") >= count, 10,
               "the reload to be applied")


def test_a_reload_that_changes_the_policy_takes_effect_at_once(pgwarden, items, tmp_path_factory):
    table = "\n[table.public.cache_items]\n"
    gw = start(pgwarden, tmp_path_factory, extra=table)
    sql = "SELECT id, secret FROM cache_items ORDER BY id"
    with gw.connect("alice", "acme") as conn:
        for _ in range(2):
            assert simple(conn, sql)[1] == [(1, "a-secret-1"), (2, "a-secret-2"),
                                            (3, "a-secret-3")]
        # a mask: the very next statement sees it
        gw.reload(settings=gw_settings(gw), extra=CACHE + table + "mask.secret = null\n")
        reloaded(gw, 1)
        assert simple(conn, sql)[1] == [(1, None), (2, None), (3, None)]
        # a row filter
        gw.reload(settings=gw_settings(gw), extra=CACHE + table + "row_filter = id = 2\n")
        reloaded(gw, 2)
        assert simple(conn, sql)[1] == [(2, "a-secret-2")]
        prepared = sql.replace("ORDER BY", "WHERE id > %s ORDER BY")
        assert extended(conn, prepared, (0,), prepare=True)[1] == [(2, "a-secret-2")]
        # and back: the first entry is reachable again (same policy, same key)
        since = gw.audit.mark()
        gw.reload(settings=gw_settings(gw), extra=CACHE + table)
        reloaded(gw, 3)
        assert len(simple(conn, sql)[1]) == 3
        hows, recs = gw.audit.cache_of(since, sql)
        assert hows == ["hit"], recs


def test_an_untyped_parse_follows_a_reload_of_cache_ttl(pgwarden, items, tmp_path_factory):
    """Drivers Parse the same text with an untyped $1 for every execution.
    Whether its answers may be cached is worked out once per text and kept
    (stmt.c's verdict memo); a reload that makes the table uncacheable must
    take effect at the very next execution, which then reads the table
    rather than the entry."""
    table = "\n[table.public.cache_flight]\n"
    gw = start(pgwarden, tmp_path_factory, extra=table)
    sql = "SELECT v FROM cache_flight WHERE 'untyped' <> '' AND id = $1"
    session = pgwire.Session(HOST, gw.port).startup("alice", "acme", "alice-secret")

    def run(value):
        bind = (b"\0\0" + struct.pack("!HHI", 0, 1, len(value)) + value
                + struct.pack("!H", 0))
        session.sock.sendall(message(b"P", b"\0" + sql.encode() + b"\0\0\0")
                             + message(b"B", bind) + message(b"E", b"\0\0\0\0\0")
                             + message(b"S"))
        got = raw_messages(session, 1)
        assert not [p for k, p in got if k == b"E"], got
        return [p for k, p in got if k == b"D"]
    try:
        since = gw.audit.mark()
        for _ in range(3):
            assert run(b"7") == [struct.pack("!HI", 1, 2) + b"v7"]
        assert gw.audit.cache_of(since, sql, 3)[0] == ["miss", "hit", "hit"]
        with items.connect("acme") as direct:
            direct.execute("UPDATE cache_flight SET v = 'w7' WHERE id = 7")
        assert run(b"7") == [struct.pack("!HI", 1, 2) + b"v7"]  # the entry, as configured
        since = gw.audit.mark()
        gw.reload(settings=gw_settings(gw), extra=CACHE + table + "cache_ttl = 0\n")
        reloaded(gw, 1)
        for _ in range(2):
            assert run(b"7") == [struct.pack("!HI", 1, 2) + b"w7"]
        # ... and nothing after the reload came from (or went into) the cache
        recs = wait_until(lambda: (lambda r: r if len(r) >= 2 else None)(
            [r for r in audit_records(gw.audit.path)[since:] if r.get("sql") == sql]),
            10, "the audit records after the reload")
        assert [r.get("cache", "none") for r in recs] == ["none", "none"], recs
    finally:
        session.close()
        with items.connect("acme") as direct:
            direct.execute("UPDATE cache_flight SET v = 'v7' WHERE id = 7")


def gw_settings(gw):
    return {"audit_log": str(gw.audit.path), "pool_size": "30", "admin_users": "admin"}


def test_max_entry_and_max_memory_hold(pgwarden, items, tmp_path_factory):
    gw = start(pgwarden, tmp_path_factory, cache="max_entry = 4kB\nmax_memory = 64kB\n")
    with gw.connect("alice", "acme") as conn:
        big = "SELECT repeat(label, 1000) AS big FROM cache_items WHERE id = 1"
        since = gw.audit.mark()
        for _ in range(2):
            assert simple(conn, big)[1] == [("acme one" * 1000,)]
        hows, recs = gw.audit.cache_of(since, big, 2)
        assert hows == ["miss", "bypass"]
        assert "max_entry" in recs[0]["cache_reason"] and "max_entry" in recs[1]["cache_reason"]
        # 40 answers of ~3 kB: about half fit in 64 kB
        since = gw.audit.mark()
        for i in range(40):
            assert simple(conn, f"SELECT repeat('x', 3000) || {i} AS v")[1][0][0].endswith(str(i))
        with gw.connect("admin", "pgwarden") as admin:
            row = result_row(admin)
        assert int(row["bytes"]) <= 64 * 1024
        assert int(row["evictions"]) > 0
        assert 8 <= int(row["entries"]) <= 21, row
        last, first = "SELECT repeat('x', 3000) || 39 AS v", "SELECT repeat('x', 3000) || 0 AS v"
        simple(conn, last)
        simple(conn, first)
        assert gw.audit.cache_of(since, last, 2)[0] == ["miss", "hit"]
        assert gw.audit.cache_of(since, first, 2)[0] == ["miss", "miss"]


def result_row(admin, name="result"):
    cur = admin.execute("SHOW CACHE")
    names = [c.name for c in cur.description]
    rows = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    return rows[name]


def expires(gw, conn, sql, at_least, at_most):
    """Query until the audit says miss again; how long the entry lived."""
    since = gw.audit.mark()
    simple(conn, sql)
    born = time.monotonic()

    def missed():
        simple(conn, sql)
        recs = [r for r in audit_records(gw.audit.path)[since:] if r.get("sql") == sql]
        hows = [r["cache"] for r in recs]
        return hows.count("miss") >= 2 and hows
    hows = wait_until(missed, at_most + 5, f"{sql!r} to expire", interval=0.05)
    lived = time.monotonic() - born
    assert hows[0] == "miss" and "hit" in hows, hows
    assert at_least <= lived <= at_most + 1, f"{sql!r} lived {lived:.2f}s"


def test_ttl_and_cache_ttl_expire_on_time(pgwarden, items, tmp_path_factory):
    extra = ("\n[table.public.cache_flight]\ncache_ttl = 1s\n"
             "\n[table.public.kinds]\ncache_ttl = 0\n")
    gw = start(pgwarden, tmp_path_factory, cache="ttl = 3s\n", extra=extra)
    with gw.connect("alice", "acme") as conn:
        expires(gw, conn, "SELECT label FROM cache_items WHERE 'ttl' <> '' AND id = 1", 2.9, 3.5)
        # the shortest cache_ttl among the tables read wins
        expires(gw, conn, "SELECT v FROM cache_flight WHERE id = 1", 0.9, 1.5)
        expires(gw, conn, "SELECT c.label, f.v FROM cache_items c JOIN cache_flight f "
                "USING (id) WHERE id = 1", 0.9, 1.5)
        since = gw.audit.mark()
        for _ in range(2):
            simple(conn, "SELECT i FROM kinds WHERE i = 42")
        hows, recs = gw.audit.cache_of(since, "SELECT i FROM kinds WHERE i = 42", 2)
        assert hows == ["bypass", "bypass"]
        assert "cache_ttl = 0" in recs[0]["cache_reason"]


# --------------------------------------------------------------------------
# Single flight
# --------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_twenty_simultaneous_identical_misses_run_once_on_the_backend(gw, items):
    sql = "SELECT count(*), max(v) FROM cache_flight WHERE 'flight' <> ''"
    conns = [gw.connect("alice" if i % 2 else "carol", "acme") for i in range(20)]
    results, errors_ = [None] * 20, []
    try:
        for c in conns:  # every client holds its backend session already
            c.execute("SELECT 1")
        since = gw.audit.mark()
        before = coalesced(gw)
        with items.connect("acme") as locker, items.connect("acme") as watcher:
            locker.autocommit = False
            locker.execute("LOCK TABLE cache_flight IN ACCESS EXCLUSIVE MODE")

            def run(i):
                try:
                    results[i] = simple(conns[i], sql)[1]
                except Exception as e:  # noqa: BLE001 - reported below
                    errors_.append(e)
            threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
            for t in threads:
                t.start()
            # every one of them waits: one on the backend's lock, 19 in pgwarden
            wait_until(lambda: coalesced(gw) - before >= 19, 20,
                       "19 clients to wait for the leader")
            assert lock_waiters(watcher, "cache_flight") == 1
            locker.rollback()
            for t in threads:
                t.join(20)
        assert not errors_, errors_
        assert results == [[(100, "v99")]] * 20
        hows, recs = gw.audit.cache_of(since, sql, 20)
        assert sorted(hows) == ["hit"] * 19 + ["miss"]
        assert sum(r.get("cache_reason") == "hit, coalesced" for r in recs) == 19
    finally:
        for c in conns:
            c.close()


def coalesced(gw, tenant="acme"):
    """SHOW CACHE <tenant>'s coalesced count."""
    with gw.connect("admin", "pgwarden") as admin:
        cur = admin.execute(f"SHOW CACHE {tenant}")
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    return int(rows[0]["coalesced"]) if rows else 0


def test_a_waiter_that_is_cancelled_stops_waiting(gw, items):
    sql = "SELECT count(*) FROM cache_flight WHERE 'cancel' <> '' AND id > 50"
    leader = gw.connect("alice", "acme")
    waiter = gw.connect("alice", "acme")
    try:
        for c in (leader, waiter):
            c.execute("SELECT 1")
        with items.connect("acme") as locker, items.connect("acme") as watcher:
            locker.autocommit = False
            locker.execute("LOCK TABLE cache_flight IN ACCESS EXCLUSIVE MODE")
            before = coalesced(gw)
            answers = []
            t = threading.Thread(target=lambda: answers.append(simple(leader, sql)[1]))
            t.start()
            wait_until(lambda: lock_waiters(watcher, "cache_flight") == 1, 10,
                       "the leader to reach the lock")
            errs = []

            def wait():
                try:
                    simple(waiter, sql)
                except errors.QueryCanceled as e:
                    errs.append(e)
            w = threading.Thread(target=wait)
            w.start()
            wait_until(lambda: coalesced(gw) > before, 10, "the second client to wait")
            waiter.cancel()
            w.join(10)
            assert len(errs) == 1
            assert waiter.execute("SELECT 1").fetchone() == (1,)
            locker.rollback()
            t.join(10)
            assert answers == [[(50,)]]
    finally:
        leader.close()
        waiter.close()


# --------------------------------------------------------------------------
# The admin console and /metrics
# --------------------------------------------------------------------------


def test_cache_clear_drops_one_tenant_or_all(gw):
    sql = "SELECT label FROM cache_items WHERE 'clear' <> '' AND id = 1"
    with gw.connect("carol", "acme") as a, gw.connect("carol", "globex") as g, \
            gw.connect("admin", "pgwarden") as admin:
        for conn in (a, g):
            simple(conn, sql)
        since = gw.audit.mark()
        admin.execute("CACHE CLEAR acme")
        for conn in (a, g):
            simple(conn, sql)
        recs = gw.audit.records(since, sql, 2)
        assert [(r["tenant"], r["cache"]) for r in recs] == [("acme", "miss"), ("globex", "hit")]
        since = gw.audit.mark()
        admin.execute("CACHE CLEAR")
        for conn in (a, g):
            simple(conn, sql)
        recs = gw.audit.records(since, sql, 2)
        assert [r["cache"] for r in recs] == ["miss", "miss"]


def test_show_cache_shows_the_result_cache_beside_the_others(gw):
    with gw.connect("alice", "acme") as conn:
        for _ in range(3):
            simple(conn, "SELECT label FROM cache_items WHERE 'show' <> '' AND id = 2")
    with gw.connect("admin", "pgwarden") as admin:
        cur = admin.execute("SHOW CACHE")
        names = [c.name for c in cur.description]
        rows = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
        assert names[:6] == ["cache", "mode", "entries", "capacity", "hits", "misses"]
        assert set(rows) == {"rewrite", "result", "translation"}
        result = rows["result"]
        assert result["mode"] == "memory"
        assert int(result["hits"]) >= 2 and int(result["entries"]) >= 1
        assert int(result["bytes"]) > 0
        assert int(result["capacity"]) == 256 * 1024 * 1024
        cur = admin.execute("SHOW CACHE TENANTS")
        tenants = {r[0]: r for r in cur.fetchall()}
        assert "acme" in tenants
        cur = admin.execute("SHOW CACHE globex")
        assert [r[0] for r in cur.fetchall()] in ([], ["globex"])


def test_metrics_export_the_cache_counters(pgwarden, items, tmp_path_factory):
    port = free_port()
    gw = start(pgwarden, tmp_path_factory, settings={"metrics_port": str(port)})
    with gw.connect("alice", "acme") as conn:
        for _ in range(3):
            simple(conn, "SELECT label FROM cache_items WHERE 'metrics' <> '' AND id = 1")
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["pgwarden_cache_hits_total"] == 2
    assert values["pgwarden_cache_misses_total"] == 1
    assert values['pgwarden_cache_hits_total{tenant="acme"}'] == 2
    assert values["pgwarden_cache_entries"] >= 1
    assert "pgwarden_cache_redis_outages_total" in values


# --------------------------------------------------------------------------
# The session's statements, as the server holds them
# --------------------------------------------------------------------------


def test_a_failed_reparse_keeps_the_statement_the_server_holds(gw):
    session = pgwire.Session(HOST, gw.port).startup("alice", "acme", "alice-secret")
    try:
        def parse(name, sql):
            return message(b"P", name + b"\0" + sql.encode() + b"\0\0\0")

        def run(name):
            return (message(b"B", b"\0" + name + b"\0\0\0\0\0\0\0") + message(b"E", b"\0\0\0\0\0")
                    + message(b"S"))
        a = "SELECT label FROM cache_items WHERE 'reparse' <> '' AND id = 1"
        b = "SELECT label FROM cache_items WHERE 'reparse' <> '' AND id = 2"
        session.sock.sendall(parse(b"s1", a) + message(b"S"))
        raw_messages(session, 1)
        for _ in range(2):  # the second is a hit
            session.sock.sendall(run(b"s1"))
            got = raw_messages(session, 1)
            assert [p for k, p in got if k == b"D"] == [struct.pack("!HI", 1, 8) + b"acme one"]
        # s1 exists: PostgreSQL refuses to parse it again and keeps the first
        session.sock.sendall(parse(b"s1", b) + message(b"S"))
        got = raw_messages(session, 1)
        assert got[0][0] == b"E" and "42P05" in got[0][1].decode(errors="replace")
        for _ in range(2):
            session.sock.sendall(run(b"s1"))
            got = raw_messages(session, 1)
            assert [p for k, p in got if k == b"D"] == [struct.pack("!HI", 1, 8) + b"acme one"]
        # Close, then the name means b
        session.sock.sendall(message(b"C", b"Ss1\0") + parse(b"s1", b) + message(b"S"))
        raw_messages(session, 1)
        for _ in range(2):
            session.sock.sendall(run(b"s1"))
            got = raw_messages(session, 1)
            assert [p for k, p in got if k == b"D"] == [struct.pack("!HI", 1, 8) + b"acme two"]
    finally:
        session.close()


def test_pipelined_statements_get_their_own_answers(gw):
    """Extended-protocol statements pipelined before one Sync, some cached."""
    session = pgwire.Session(HOST, gw.port).startup("alice", "acme", "alice-secret")
    try:
        def one(i):
            sql = f"SELECT label, {i} FROM cache_items WHERE 'pipe' <> '' AND id = 1"
            return (message(b"P", b"\0" + sql.encode() + b"\0\0\0") + message(b"B", b"\0" * 8)
                    + message(b"E", b"\0\0\0\0\0"))
        for _ in range(3):
            session.sock.sendall(one(1) + one(2) + one(1) + message(b"S"))
            got = raw_messages(session, 1)
            rows = [p for k, p in got if k == b"D"]
            assert rows == [struct.pack("!HI", 2, 8) + b"acme one" + struct.pack("!I", 1) + n
                            for n in (b"1", b"2", b"1")]
    finally:
        session.close()


# --------------------------------------------------------------------------
# Transaction pooling
# --------------------------------------------------------------------------


def test_transaction_pooling_serves_hits_and_keeps_settings_apart(pgwarden, items,
                                                                  tmp_path_factory):
    """Clients sharing two sessions: each one's settings shape its own
    answers, hits need no session, and prepared statements hit too."""
    gw = start(pgwarden, tmp_path_factory,
               settings={"pool_mode": "transaction", "pool_size": "2"})
    sql = "SELECT at::text FROM cache_items WHERE 'txn' <> '' AND id = 1"
    zones = ["'UTC'", "'Asia/Tokyo'", "'America/New_York'", "'UTC'"]
    expected = [direct_value(items, "TIME ZONE", z, sql) for z in zones]
    conns = [gw.connect("alice", "acme") for _ in zones]
    try:
        for conn, zone in zip(conns, zones):
            conn.execute(f"SET TIME ZONE {zone}")
        since = gw.audit.mark()
        for _ in range(3):
            for conn, want in zip(conns, expected):
                assert simple(conn, sql)[1] == [(want,)]
                prepared = extended(conn, sql.replace("= 1", "= %s"), (1,), prepare=True)
                assert prepared[1] == [(want,)]
        hows, _ = gw.audit.cache_of(since, sql, 12)
        assert hows.count("miss") == 3  # UTC twice: one entry
        assert hows.count("hit") == 9
    finally:
        for conn in conns:
            conn.close()


# --------------------------------------------------------------------------
# Extended-protocol messages in separate writes (node-postgres's way)
# --------------------------------------------------------------------------
#
# A held Bind/Describe/Execute waits for the session to answer what came
# before it; when what came before is pgwarden's own (the SET for the
# client's startup parameters, sent as the session is linked; in
# transaction pooling, the client's settings replayed where it lands), no
# ReadyForQuery of the client's follows, and the Parse behind it is not
# answered until the client's Sync, which pgwarden does not read while it
# waits: every connection hung. A startup parameter makes that SET; the
# whole pipeline in one write is the deterministic case (the Execute is
# decided before the SET's answer can come back), the splits at every
# point the ones where the decision meets the input in its other states.

SPLIT_SQL = "SELECT label FROM cache_items WHERE 'split' <> '' AND id = $1"


def split_pipeline(value):
    bind = (b"\0\0" + struct.pack("!HH", 0, 1) + struct.pack("!I", len(value)) + value
            + struct.pack("!H", 0))
    return [message(b"P", b"\0" + SPLIT_SQL.encode() + b"\0\0\0"), message(b"B", bind),
            message(b"D", b"P\0"), message(b"E", b"\0\0\0\0\0"), message(b"S")]


# Where the pipeline is cut into writes: by the messages each write ends with.
SPLITS = {
    "one write": [5],
    "after Parse": [1, 5],
    "after Bind": [2, 5],
    "after Describe": [3, 5],
    "after Execute": [4, 5],
    "every message": [1, 2, 3, 4, 5],
}


def run_split(session, value, cuts):
    msgs = split_pipeline(value)
    start = 0
    for i, cut in enumerate(cuts):
        if i:
            time.sleep(0.02)  # a client's separate writes, not synchronisation
        session.sock.sendall(b"".join(msgs[start:cut]))
        start = cut
    got = raw_messages(session, 1)
    assert [k for k, _ in got] == [b"1", b"2", b"T", b"D", b"C", b"Z"], got
    return [p for k, p in got if k == b"D"]


def expected_label(tenant, value):
    label = dict((str(r[0]), r[1]) for r in ROWS[tenant])[value]
    return [struct.pack("!HI", 1, len(label)) + label.encode()]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
def test_messages_in_separate_writes_are_all_answered(pgwarden, items, tmp_path_factory,
                                                      pool_mode):
    """Parse, Bind, Describe, Execute and Sync cut at every point, on fresh
    connections with a startup parameter, several at once: every pipeline
    is answered (hits and misses alike)."""
    gw = start(pgwarden, tmp_path_factory,
               settings={"pool_mode": pool_mode, "pool_size": "2"})
    since = gw.audit.mark()
    errors = []

    def client(n):
        try:
            for split, cuts in SPLITS.items():
                # A fresh connection: its first statement lands with the SET
                # for its startup parameter in flight.
                session = pgwire.Session(HOST, gw.port, timeout=8).startup(
                    "alice", "acme", "alice-secret", application_name=f"split {n} {split}")
                try:
                    for value in (b"1", b"2", b"1"):
                        assert run_split(session, value, cuts) == expected_label("acme",
                                                                                 value.decode())
                finally:
                    session.close()
        except Exception as e:  # reported below, with the connection's number
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    if pool_mode == "session":  # the cache did answer some of them
        gw.audit.records(since, SPLIT_SQL, 1, pred=lambda r: r["cache"] == "hit")


def test_a_lead_that_never_gets_a_session_stores_nothing(pgwarden, items, tmp_path_factory):
    """Transaction pooling: a prepared statement's Bind/Execute looked up
    without a session leads, then finds no session free within
    pool_timeout. Its answer never comes; the next statement's must not be
    stored as its answer."""
    gw = start(pgwarden, tmp_path_factory, settings={
        "pool_mode": "transaction", "pool_size": "1", "pool_timeout": "1s"})
    sql = "SELECT label FROM cache_items WHERE 'no session' <> '' AND id = $1"
    session = pgwire.Session(HOST, gw.port).startup("alice", "acme", "alice-secret")

    def run(value):
        bind = (b"\0s1\0" + struct.pack("!HH", 0, 1) + struct.pack("!I", 1) + value
                + struct.pack("!H", 0))
        session.sock.sendall(message(b"B", bind) + message(b"D", b"P\0")
                             + message(b"E", b"\0\0\0\0\0") + message(b"S"))
        return raw_messages(session, 1)

    try:
        session.sock.sendall(message(b"P", b"s1\0" + sql.encode() + b"\0\0\0") + message(b"S"))
        assert [k for k, _ in raw_messages(session, 1)] == [b"1", b"Z"]
        holder = gw.connect("alice", "acme", autocommit=False)
        try:
            holder.execute("SELECT 1")  # the only session, inside a transaction
            got = run(b"2")
            assert got[0][0] == b"E" and "no backend session" in got[0][1].decode(), got
        finally:
            holder.rollback()
            holder.close()
        assert [p for k, p in run(b"3") if k == b"D"] == expected_label("acme", "3")
        assert [p for k, p in run(b"2") if k == b"D"] == expected_label("acme", "2")
    finally:
        session.close()
