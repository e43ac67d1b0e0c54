"""The result cache follows the backend's writes (invalidation = replication):
pgwarden runs one logical replication stream per backend database and drops
every cached result that read a table the moment a write to it commits, so
ttl can be an hour and answers are still right.

Everything happens in a database of its own (pgw_inv) with two tenants on it
(inva and invb, one stream between them) and a role that may replicate
(pgw_inv_repl, named by `changes =`); writes are made directly on the
backend with psycopg, never through pgwarden, as applications do. Whether
an answer came from the cache is read from the tenant's hit counter (SHOW
CACHE <tenant>); what a user notices (fresh or stale rows) is asserted on
its own. Waiting is always polling a condition until a deadline.
"""

import time
import uuid

import psycopg
import pytest

from cacheutil import simple
from conftest import DEFAULT_USERS, wait_until

DB = "pgw_inv"
ROLE = "pgw_inv_repl"
PREFIX = f"pgwinv-{uuid.uuid4().hex[:8]}:"

SCHEMA = """
CREATE TABLE items (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE other (id integer PRIMARY KEY, v text NOT NULL);
CREATE TABLE rows_of (id integer PRIMARY KEY, owner text NOT NULL, v text NOT NULL);
CREATE TABLE wide (id integer PRIMARY KEY, owner text NOT NULL, v text NOT NULL);
CREATE TABLE fence (id bigserial PRIMARY KEY);
CREATE VIEW items_view AS SELECT id, v FROM items;
CREATE PUBLICATION pgwarden_cache FOR ALL TABLES;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO reader;
"""

USERS = dict(DEFAULT_USERS, dave="inva, invb")


@pytest.fixture(scope="module")
def inv(postgres):
    with postgres.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        conn.execute(f"CREATE DATABASE {DB}")
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE} LOGIN REPLICATION")
    with postgres.connect(DB) as conn:
        conn.execute(SCHEMA)
    reset(postgres)
    yield postgres
    # instances still running (a failed test's) hold a slot: end them
    with postgres.connect() as conn:
        conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                     "WHERE database = %s AND active", (DB,))
    wait_until(lambda: not slots(postgres), 10, "the slots to go")
    with postgres.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


def reset(postgres, gw=None):
    """The tables as the tests expect them; with gw, returns once pgwarden's
    stream has reported these writes (so a result cached after this is not
    dropped by them later)."""
    fence = "SELECT max(id) FROM fence"
    if gw:
        through = gw.connect("dave", "inva")
        # the fence's answer must be in the cache (a hit seen) before the
        # write: an answer that was never stored changes at once and would
        # let the wait below pass before the stream has reported anything
        before = value(through, fence)
        wait_until(lambda: hit_again(gw, through, "inva", fence), 10,
                   "the fence's answer to be cached")
    with postgres.connect(DB) as conn:
        conn.execute("TRUNCATE items, other, rows_of, wide")
        conn.execute("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g")
        conn.execute("INSERT INTO other SELECT g, 'other ' || g FROM generate_series(1, 10) g")
        conn.execute("INSERT INTO rows_of VALUES (1, 'a', 'a one'), (2, 'a', 'a two'), "
                     "(3, 'b', 'b three'), (4, 'b', 'b four')")
        conn.execute("INSERT INTO wide VALUES (1, 'a', 'wide one'), (2, 'b', 'wide two')")
    if gw:
        # the stream reports commits in order: once the fence's write has
        # dropped the fence's cached answer, the writes above have too
        write(postgres, "INSERT INTO fence DEFAULT VALUES")
        wait_until(lambda: value(through, fence) != before, 5, "the stream to pass the fence")
        through.close()


def write(postgres, sql, params=None):
    with postgres.connect(DB) as conn:
        conn.execute(sql, params)


def tenants_section(postgres, tenants=(("inva", "a"), ("invb", "b"))):
    out = ""
    for name, tid in tenants:
        out += (f"\n[tenant.{name}]\nbackend = {postgres.conninfo(DB)}\nid = {tid}\n"
                f"changes = {postgres.conninfo(DB, ROLE)}\n")
    return out + "".join(f"\n[table.public.{t}]\nrow_filter = owner = $tenant\n"
                         for t in ("rows_of", "wide"))


SETTINGS = {"admin_users": "admin", "pool_size": "10"}


def config_extra(postgres, cache="mode = memory\n", **tenants):
    return ("\n[cache]\n" + cache + "ttl = 1h\ninvalidation = replication\n"
            + tenants_section(postgres, **tenants))


def start(pgwarden, postgres, cache="mode = memory\n"):
    gw = pgwarden(settings=SETTINGS, users=USERS, extra=config_extra(postgres, cache))
    wait_until(lambda: stream_row(gw) and stream_row(gw)["mode"] == "exact", 15,
               "the change stream to catch up")
    return gw


def show_cache(gw, what=""):
    with gw.connect("admin", "pgwarden") as admin:
        cur = admin.execute(f"SHOW CACHE {what}".strip())
        names = [c.name for c in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def stream_row(gw):
    rows = [r for r in show_cache(gw)
            if r["cache"] == "stream" and r["database"].startswith(DB + "@")]
    return rows[0] if rows else None


def hits(gw, tenant):
    rows = show_cache(gw, tenant)
    return int(rows[0]["hits"]) if rows else 0


def value(conn, sql):
    return simple(conn, sql)[1]


def hit_again(gw, conn, tenant, sql):
    """Whether running sql once more is answered from the cache."""
    before = hits(gw, tenant)
    value(conn, sql)
    return hits(gw, tenant) == before + 1


def cached(gw, conn, tenant, sql):
    """Run sql until it is answered from the cache (a hit counted); its rows.

    Until, not twice: under load (the ASan stage runs modules side by side)
    the stream can report the fixture's own earlier writes after the first
    run stored its answer, and that invalidation rightly drops it; the next
    run stores it again. Every run must return the same rows."""
    rows = value(conn, sql)
    deadline = time.monotonic() + 20
    while True:
        before = hits(gw, tenant)
        again = value(conn, sql)
        assert again == rows
        if hits(gw, tenant) == before + 1:
            return rows
        assert time.monotonic() < deadline, "the statement is never answered from the cache"
        time.sleep(0.05)


def visible_within(conn, sql, expected, seconds):
    """Poll sql through pgwarden until it returns expected; how long it took."""
    start = time.monotonic()
    wait_until(lambda: value(conn, sql) == expected, seconds,
               f"{sql!r} to return {expected!r} through pgwarden", interval=0.01)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def gw(pgwarden, inv):
    g = start(pgwarden, inv)
    yield g
    g.stop()


def test_show_cache_shows_the_stream_per_database(gw):
    row = stream_row(gw)
    assert row["mode"] == "exact" and row["stream"] == "streaming"
    assert row["database"].startswith(DB + "@")
    assert row["tenants"] == "inva, invb"
    assert "/" in row["last_lsn"] and int(row["lag_ms"]) >= 0
    # the first columns are the ones SHOW CACHE always had
    assert list(show_cache(gw)[0])[:6] == ["cache", "mode", "entries", "capacity", "hits",
                                           "misses"]


def test_a_row_updated_on_the_backend_is_visible_within_a_second(gw, inv):
    reset(inv, gw)
    sql = "SELECT v FROM items WHERE id = 1"
    with gw.connect("dave", "inva") as conn:
        assert cached(gw, conn, "inva", sql) == [("item 1",)]
        before = int(stream_row(gw)["invalidations"])
        write(inv, "UPDATE items SET v = 'changed 1' WHERE id = 1")
        took = visible_within(conn, sql, [("changed 1",)], 1.0)
        assert took < 1.0
        assert int(stream_row(gw)["invalidations"]) > before
        # and the fresh answer is cached again
        assert cached(gw, conn, "inva", sql) == [("changed 1",)]


def test_results_of_untouched_tables_stay_cached(gw, inv):
    reset(inv, gw)
    touched, untouched = "SELECT v FROM items WHERE id = 2", "SELECT v FROM other WHERE id = 2"
    with gw.connect("dave", "inva") as conn:
        cached(gw, conn, "inva", touched)
        cached(gw, conn, "inva", untouched)
        write(inv, "UPDATE items SET v = 'changed 2' WHERE id = 2")
        visible_within(conn, touched, [("changed 2",)], 1.0)
        before = hits(gw, "inva")
        assert value(conn, untouched) == [("other 2",)]
        assert hits(gw, "inva") == before + 1


def test_a_view_follows_the_table_under_it(gw, inv):
    reset(inv, gw)
    sql = "SELECT v FROM items_view WHERE id = 3"
    with gw.connect("dave", "inva") as conn:
        assert cached(gw, conn, "inva", sql) == [("item 3",)]
        write(inv, "UPDATE items SET v = 'changed 3' WHERE id = 3")
        visible_within(conn, sql, [("changed 3",)], 1.0)


@pytest.mark.parametrize("statement, expected", [
    ("DELETE FROM other WHERE id > 5", [(5,)]),
    ("TRUNCATE other", [(0,)]),
])
def test_delete_and_truncate_invalidate(gw, inv, statement, expected):
    reset(inv, gw)
    sql = "SELECT count(*) FROM other"
    with gw.connect("dave", "inva") as conn:
        assert cached(gw, conn, "inva", sql) == [(10,)]
        write(inv, statement)
        visible_within(conn, sql, expected, 1.0)


def test_row_filters_hold_for_answers_rebuilt_after_an_invalidation(gw, inv):
    reset(inv, gw)
    sql = "SELECT id, v FROM rows_of ORDER BY id"
    with gw.connect("dave", "inva") as a, gw.connect("dave", "invb") as b:
        assert cached(gw, a, "inva", sql) == [(1, "a one"), (2, "a two")]
        assert cached(gw, b, "invb", sql) == [(3, "b three"), (4, "b four")]
        write(inv, "UPDATE rows_of SET v = v || '!'")
        write(inv, "INSERT INTO rows_of VALUES (5, 'b', 'b five')")
        visible_within(a, sql, [(1, "a one!"), (2, "a two!")], 1.0)
        visible_within(b, sql, [(3, "b three!"), (4, "b four!"), (5, "b five")], 1.0)
        # the rebuilt answers are cached, each for its own tenant
        assert cached(gw, a, "inva", sql) == [(1, "a one!"), (2, "a two!")]
        assert cached(gw, b, "invb", sql) == [(3, "b three!"), (4, "b four!"), (5, "b five")]


def test_a_failing_stream_falls_back_to_ttl_logged_once(gw):
    # acme's backend role may not replicate: its stream fails at every try
    def acme():
        rows = [r for r in show_cache(gw)
                if r["cache"] == "stream" and r["database"].startswith("acme@")]
        return rows[0] if rows else None

    wait_until(lambda: acme()["mode"] == "fallback to ttl", 15, "acme to fall back to ttl")
    assert acme()["stream"] in ("retrying", "connecting")
    with gw.connect("alice", "acme") as conn:
        cached(gw, conn, "acme", "SELECT name FROM customers WHERE id = 1")
    lines = [ln for ln in gw.log_text().splitlines()
             if "change stream for acme@" in ln and "replication" in ln]
    assert len(lines) == 1, lines
    assert "falls back to ttl" in lines[0]


def walsender_pid(postgres):
    with postgres.connect() as conn:
        row = conn.execute("SELECT active_pid FROM pg_replication_slots "
                           "WHERE database = %s AND active", (DB,)).fetchone()
        return row[0] if row else None


def test_a_killed_walsender_reconnects_and_the_cache_stays_correct(gw, inv):
    reset(inv, gw)
    sql = "SELECT v FROM items WHERE id = 4"
    with gw.connect("dave", "inva") as conn:
        cached(gw, conn, "inva", sql)
        pid = walsender_pid(inv)
        assert pid
        with inv.connect() as su:
            su.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # a write while the stream is down is never hidden by the cache
        write(inv, "UPDATE items SET v = 'during the outage' WHERE id = 4")
        visible_within(conn, sql, [("during the outage",)], 5.0)
        wait_until(lambda: walsender_pid(inv) not in (None, pid)
                   and stream_row(gw)["mode"] == "exact", 15, "the stream to come back")
        # back to exact: cached again, and the next write is seen at once
        cached(gw, conn, "inva", sql)
        write(inv, "UPDATE items SET v = 'after the outage' WHERE id = 4")
        visible_within(conn, sql, [("after the outage",)], 1.0)


def test_a_column_added_by_ddl_is_usable_without_reload(gw, inv):
    # a table the policy rewrites (a row filter): what the policy knows of
    # its columns decides what SELECT * returns and whether a column exists
    with gw.connect("dave", "inva") as conn:
        assert value(conn, "SELECT * FROM wide") == [(1, "a", "wide one")]
        write(inv, "ALTER TABLE wide ADD COLUMN extra text NOT NULL DEFAULT 'new column'")

        def usable():
            try:
                return value(conn, "SELECT extra FROM wide") == [("new column",)]
            except psycopg.Error:
                return False

        wait_until(usable, 10, "the new column to be usable through pgwarden")
        assert value(conn, "SELECT * FROM wide") == [(1, "a", "wide one", "new column")]
        assert "configuration reloaded" not in gw.log_text()


def slots(postgres):
    with postgres.connect() as conn:
        return conn.execute("SELECT slot_name, temporary FROM pg_replication_slots "
                            "WHERE database = %s", (DB,)).fetchall()


def test_stopping_pgwarden_leaves_no_replication_slot(pgwarden, inv, gw):
    other = start(pgwarden, inv)
    wait_until(lambda: len(slots(inv)) == 2, 10, "the second instance's slot")
    assert all(temporary for _, temporary in slots(inv))
    other.stop()
    wait_until(lambda: len(slots(inv)) == 1, 10, "the stopped instance's slot to go")
    assert "pgwarden stopped" in other.log_text()


def own_slot(postgres, gw):
    with postgres.connect() as conn:
        return conn.execute("SELECT slot_name, active_pid FROM pg_replication_slots "
                            "WHERE slot_name LIKE %s", (f"pgwarden_{gw.pid}_%",)).fetchall()


def test_the_streams_follow_a_reload(pgwarden, inv, gw):
    other = start(pgwarden, inv)
    slot = own_slot(inv, other)
    assert len(slot) == 1
    # a tenant leaves the database: the stream stays, with one tenant
    other.reload(settings=SETTINGS, users=dict(USERS, dave="inva"),
                 extra=config_extra(inv, tenants=(("inva", "a"),)))
    wait_until(lambda: stream_row(other)["tenants"] == "inva", 10, "the reload to be followed")
    assert own_slot(inv, other) == slot
    with other.connect("dave", "inva") as conn:
        sql = "SELECT v FROM items WHERE id = 6"
        cached(other, conn, "inva", sql)
        write(inv, "UPDATE items SET v = 'after the reload' WHERE id = 6")
        visible_within(conn, sql, [("after the reload",)], 1.0)
    # the tenant is moved to a database of its own: a stream of its own
    other.reload(settings=SETTINGS, users=dict(USERS, dave="inva"),
                 extra=config_extra(inv, tenants=()) + "\n[tenant.inva]\n"
                 f"backend = {inv.conninfo('acme')}\n")
    wait_until(lambda: stream_row(other) is None, 10, "the stream of pgw_inv to close")
    wait_until(lambda: not own_slot(inv, other), 10, "its slot to go")
    other.stop()


def test_two_instances_sharing_redis_both_stop_serving_an_invalidated_entry(
        pgwarden, inv, redis, gw):
    reset(inv, gw)
    cache = f"mode = redis\nredis = {redis.url}\nkey_prefix = {PREFIX}\n"
    first, second = start(pgwarden, inv, cache), start(pgwarden, inv, cache)
    sql = "SELECT v FROM items WHERE id = 5"

    def hit_on(g, conn):
        before = hits(g, "inva")
        rows = value(conn, sql)
        return rows, hits(g, "inva") == before + 1

    with first.connect("dave", "inva") as a, second.connect("dave", "inva") as b:
        wait_until(lambda: hit_on(first, a)[1], 10,
                   "the first instance to serve the entry from Redis")
        wait_until(lambda: hit_on(second, b)[1], 10,
                   "the second instance to serve the first one's entry")
        write(inv, "UPDATE items SET v = 'changed 5' WHERE id = 5")
        visible_within(a, sql, [("changed 5",)], 1.0)
        visible_within(b, sql, [("changed 5",)], 1.0)
    first.stop()
    second.stop()
