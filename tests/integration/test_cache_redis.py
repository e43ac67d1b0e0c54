"""The result cache with mode = redis: two pgwarden instances sharing one real
redis-server (the harness's), as several instances behind one address would.
Entries, single flight, ASK's rate limit and translations are shared; Redis
going away mid-run costs no answer; CACHE CLEAR reaches Redis.

Each test module's instances use a key_prefix of their own, so nothing here
meets what another module left in the shared Redis.
"""

import subprocess
import threading
import time
import uuid

import pytest
from psycopg import errors

from askutil import FakeLLM, audit_records, exact, llm_section, sql_reply
from cacheutil import Audit, lock_waiters, simple
from conftest import PGWARDEN_BIN, wait_until

PREFIX = f"pgwt-{uuid.uuid4().hex[:8]}:"

TABLE_SQL = """
DROP TABLE IF EXISTS cache_shared;
CREATE TABLE cache_shared (id integer PRIMARY KEY, label text NOT NULL);
GRANT SELECT ON cache_shared TO reader;
"""


@pytest.fixture(scope="module")
def shared(postgres):
    for tenant in ("acme", "globex"):
        with postgres.connect(tenant) as conn:
            conn.execute(TABLE_SQL)
            conn.execute("INSERT INTO cache_shared SELECT g, %s || ' ' || g "
                         "FROM generate_series(1, 50) g", (tenant,))
    yield postgres
    for tenant in ("acme", "globex"):
        with postgres.connect(tenant) as conn:
            conn.execute("DROP TABLE IF EXISTS cache_shared")


@pytest.fixture(scope="module")
def llm():
    fake = FakeLLM()
    yield fake
    fake.stop()


def redis_gateway(pgwarden, redis, tmp_path_factory, llm, prefix=PREFIX, **llm_overrides):
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    extra = (f"\n[cache]\nmode = redis\nredis = {redis.url}\nkey_prefix = {prefix}\n"
             f"redis_timeout = 250ms\n" + llm_section(llm, **llm_overrides))
    gw = pgwarden(settings={"audit_log": str(audit), "pool_size": "20", "admin_users": "admin"},
                  extra=extra)
    gw.audit = Audit(audit, gw)
    wait_until(lambda: redis_connected(gw) == 2, 10, "both workers to connect to Redis")
    return gw


def redis_connected(gw):
    with gw.connect("admin", "pgwarden") as admin:
        return int(dict(admin.execute("SHOW STATS").fetchall())["redis_connected"])


@pytest.fixture(scope="module")
def pair(pgwarden, redis, shared, tmp_path_factory, llm):
    return [redis_gateway(pgwarden, redis, tmp_path_factory, llm, rate_limit="3/min")
            for _ in range(2)]


def outcome(gw, since, sql, count=1):
    return gw.audit.cache_of(since, sql, count)[0]


def until_hit(gw, since, sql, run, tenant="acme", tries=30):
    """Run `run()` until gw's audit says it was a hit for tenant. An entry
    one instance stored reaches Redis just after that instance answered
    (the store is sent as the capture ends), so another instance asking at
    once may still miss; what is shared is shared by the next try."""
    n = 0
    for _ in range(tries):
        run()
        n += 1
        recs = gw.audit.records(since, sql, n, pred=lambda r: r["tenant"] == tenant)
        if recs[-1]["cache"] == "hit":
            return n
        time.sleep(0.1)
    raise AssertionError(f"{sql!r} never a hit on the second instance: "
                         f"{[r['cache'] for r in recs]}")


def test_two_instances_share_entries(pair):
    a, b = pair
    sql = "SELECT label FROM cache_shared WHERE id = 7"
    xsql = "SELECT label, id FROM cache_shared WHERE id = $1"
    marks = [a.audit.mark(), b.audit.mark()]
    with a.connect("alice", "acme") as ca, b.connect("alice", "acme") as cb, \
            b.connect("bob", "globex") as gb:
        assert simple(ca, sql)[1] == [("acme 7",)]
        assert outcome(a, marks[0], sql) == ["miss"]

        def on_b():
            assert simple(cb, sql)[1] == [("acme 7",)]
        until_hit(b, marks[1], sql, on_b)
        assert simple(gb, sql)[1] == [("globex 7",)]  # another tenant: its own entry
        recs = b.audit.records(marks[1], sql, 1, pred=lambda r: r["tenant"] == "globex")
        assert recs[0]["cache"] == "miss"
        with cb.cursor(binary=True) as cur:
            for _ in range(2):
                cur.execute("SELECT label, id FROM cache_shared WHERE id = %s", (8,))
                assert cur.fetchall() == [("acme 8", 8)]
        assert outcome(b, marks[1], xsql, 2) == ["miss", "hit"]
        with ca.cursor(binary=True) as cur:
            def on_a():
                cur.execute("SELECT label, id FROM cache_shared WHERE id = %s", (8,))
                assert cur.fetchall() == [("acme 8", 8)]
            until_hit(a, marks[0], xsql, on_a)
    with a.connect("admin", "pgwarden") as admin:
        cur = admin.execute("SHOW CACHE")
        rows = {r[0]: r for r in cur.fetchall()}
        assert rows["result"][1] == "redis"


@pytest.mark.timeout(60)
def test_simultaneous_misses_on_two_instances_run_once(pair, shared):
    a, b = pair
    sql = "SELECT count(*), min(label) FROM cache_shared WHERE id > 10"
    conns = [gw.connect("alice", "acme") for gw in (a, b) for _ in range(6)]
    results, failures = [None] * len(conns), []
    try:
        for c in conns:
            c.execute("SELECT 1")
        marks = [a.audit.mark(), b.audit.mark()]
        with shared.connect("acme") as locker, shared.connect("acme") as watcher:
            locker.autocommit = False
            locker.execute("LOCK TABLE cache_shared IN ACCESS EXCLUSIVE MODE")

            def run(i):
                try:
                    results[i] = simple(conns[i], sql)[1]
                except Exception as e:  # noqa: BLE001 - reported below
                    failures.append(e)
            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(conns))]
            for t in threads:
                t.start()
            # one statement reaches the backend; the others wait in pgwarden,
            # on the other instance for the Redis lock
            wait_until(lambda: lock_waiters(watcher, "cache_shared") >= 1, 20,
                       "the leader to reach the backend")
            wait_until(lambda: waiting_in(a) + waiting_in(b) >= len(conns) - 1, 20,
                       "the other clients to wait for it")
            assert lock_waiters(watcher, "cache_shared") == 1
            locker.rollback()
            for t in threads:
                t.join(20)
        assert not failures, failures
        assert results == [[(40, "acme 11")]] * len(conns)
        hows = outcome(a, marks[0], sql, 6) + outcome(b, marks[1], sql, 6)
        assert sorted(hows) == ["hit"] * 11 + ["miss"]
    finally:
        for c in conns:
            c.close()


def waiting_in(gw):
    """Clients whose statement is under way (SHOW CLIENTS: active)."""
    with gw.connect("admin", "pgwarden") as admin:
        cur = admin.execute("SHOW CLIENTS")
        names = [c.name for c in cur.description]
        return sum(1 for r in cur.fetchall() if dict(zip(names, r))["state"] == "active")


def test_ask_rate_limit_and_translations_are_shared(pair, llm):
    a, b = pair
    llm.script([{"match": exact(f"how many labels are there, take {i}"),
                 "reply": sql_reply(f"SELECT count(*) + {i} AS n FROM cache_shared")}
                for i in range(4)])
    got = []
    for i, gw in enumerate((a, b, a)):  # three model calls, on both instances: 3/min
        with gw.connect("alice", "acme") as conn:
            got.append(simple(conn, f"ASK how many labels are there, take {i}")[1])
    assert got == [[(50,)], [(51,)], [(52,)]]
    assert llm.calls() == 3
    # a translation one instance asked for, the other reuses: no model call
    with b.connect("alice", "acme") as conn:
        assert simple(conn, "ASK how many labels are there, take 0")[1] == [(50,)]
    assert llm.calls() == 3
    # the fourth call, on either instance, is over the shared limit
    for gw in (b, a):
        with gw.connect("alice", "acme") as conn, pytest.raises(errors.ConfigurationLimitExceeded) as e:
            simple(conn, "ASK how many labels are there, take 3")
        assert "rate limit" in str(e.value)
    assert llm.calls() == 3


def test_the_ask_token_budget_is_shared(pgwarden, redis, shared, tmp_path_factory, llm):
    prefix = PREFIX + "budget:"
    a, b = [redis_gateway(pgwarden, redis, tmp_path_factory, llm, prefix=prefix,
                          token_budget="1000") for _ in range(2)]
    llm.script([{"match": exact("how many labels, costly"), "prompt_tokens": 900,
                 "completion_tokens": 200,
                 "reply": sql_reply("SELECT count(*) AS n FROM cache_shared")},
                {"match": exact("how many labels, again"),
                 "reply": sql_reply("SELECT count(*) AS m FROM cache_shared")}])
    with a.connect("alice", "acme") as conn:
        assert simple(conn, "ASK how many labels, costly")[1] == [(50,)]
    # counted in Redis (fire and forget): wait until it is there
    wait_until(lambda: any(int(redis.command("GET", k) or 0) >= 1100
                           for k in redis.command("KEYS", f"{prefix}tokens:*")), 10,
               "the tokens to be counted in Redis")
    with b.connect("alice", "acme") as conn, \
            pytest.raises(errors.ConfigurationLimitExceeded) as e:
        simple(conn, "ASK how many labels, again")
    assert "token budget" in str(e.value)
    assert llm.calls() == 1


def test_check_names_a_bad_redis_url(pgwarden, redis, tmp_path_factory, llm):
    gw = pgwarden(extra="\n[cache]\nmode = redis\nredis = http://nowhere:6379\n", start=False)
    run = subprocess.run([str(PGWARDEN_BIN), "--check", str(gw.config_path)],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert "[cache] redis" in run.stderr and "redis://" in run.stderr, run.stderr


@pytest.mark.timeout(90)
def test_redis_killed_mid_run_every_query_is_still_answered(pgwarden, redis, shared,
                                                           tmp_path_factory, llm):
    gw = redis_gateway(pgwarden, redis, tmp_path_factory, llm)
    sqls = [f"SELECT label FROM cache_shared WHERE id = {i}" for i in range(1, 6)]
    stop, failures, answered = threading.Event(), [], [0]

    def load():
        with gw.connect("alice", "acme") as conn:
            while not stop.is_set():
                for i, sql in enumerate(sqls, 1):
                    try:
                        assert simple(conn, sql)[1] == [(f"acme {i}",)]
                        answered[0] += 1
                    except Exception as e:  # noqa: BLE001 - reported below
                        failures.append(e)
                        return
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: answered[0] > 50, 20, "queries to run")
        redis.kill()
        before = answered[0]
        wait_until(lambda: answered[0] > before + 200, 30, "queries to run without Redis")
        wait_until(lambda: "unavailable" in gw.log_text(), 10, "the outage to be logged")
    finally:
        redis.start()
    try:
        wait_until(lambda: "available again" in gw.log_text(), 30, "Redis to be used again")
        since = gw.audit.mark()
        wait_until(lambda: "hit" in [r.get("cache") for r in
                                     audit_records(gw.audit.path)[since:]], 20,
                   "a hit from Redis again")
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not failures, failures
    assert gw.log_text().count("is unavailable") == 1  # one line per outage, not per statement


def test_cache_clear_clears_redis(pair, redis):
    a, b = pair
    sql = "SELECT label FROM cache_shared WHERE id = 21"
    with a.connect("alice", "acme") as conn:
        simple(conn, sql)
        simple(conn, sql)
    assert redis.command("KEYS", f"{PREFIX}e:acme:*")
    with b.connect("admin", "pgwarden") as admin:
        admin.execute("CACHE CLEAR acme")
    assert redis.command("KEYS", f"{PREFIX}e:acme:*") == []
    since = a.audit.mark()
    with a.connect("alice", "acme") as conn:
        assert simple(conn, sql)[1] == [("acme 21",)]
    assert outcome(a, since, sql) == ["miss"]
