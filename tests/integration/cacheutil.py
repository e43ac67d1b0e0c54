"""Helpers shared by the result cache's integration tests (test_cache*.py):
reading the cache's outcomes from the audit log, running a statement on one
protocol or the other, and counting on the backend who waits for a lock."""

import itertools

import psycopg

from askutil import audit_records
from conftest import wait_until


class Audit:
    """The audit log, read as it grows. pgwarden writes it from a thread of
    its own, in the order statements finish: a mark is a statement of its
    own whose record, once there, has every earlier one before it."""

    marks = itertools.count()

    def __init__(self, path, gw):
        self.path = path
        self.gw = gw

    def mark(self):
        sql = f"SELECT 'audit mark {next(self.marks)}' AS mark"
        with self.gw.connect("alice", "acme") as conn:
            conn.execute(sql)

        def found():
            for i, r in enumerate(audit_records(self.path)):
                if r.get("sql") == sql:
                    return i + 1
            return None
        return wait_until(found, 10, "the audit log to catch up")

    def records(self, since, sql, count, timeout=10, pred=None):
        """The first `count` records for sql after mark `since` that say
        something about the cache."""
        def found():
            recs = [r for r in audit_records(self.path)[since:]
                    if r.get("sql") == sql and "cache" in r and (pred is None or pred(r))]
            return recs[:count] if len(recs) >= count else None
        return wait_until(found, timeout, f"{count} audit records for {sql!r}")

    def cache_of(self, since, sql, count=1, timeout=10):
        recs = self.records(since, sql, count, timeout)
        return [r["cache"] for r in recs], recs


def outcomes(gw, sql, run, times=2):
    """Run `run()` `times` times; (results, cache outcomes of the audit)."""
    since = gw.audit.mark()
    results = [run() for _ in range(times)]
    how, recs = gw.audit.cache_of(since, sql, times)
    return results, how, recs


def simple(conn, sql):
    cur = psycopg.ClientCursor(conn)  # a Query message
    cur.execute(sql)
    desc = [(c.name, c.type_code) for c in cur.description]
    return desc, cur.fetchall()


def extended(conn, sql, params, prepare=False, binary=False):
    with conn.cursor(binary=binary) as cur:  # Parse/Bind/Describe/Execute/Sync
        cur.execute(sql, params, prepare=prepare)
        return [(c.name, c.type_code) for c in cur.description], cur.fetchall()


def lock_waiters(direct, marker):
    return query_count(direct, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                       "'Lock' AND backend_type = 'client backend' AND query LIKE %s",
                       (f"%{marker}%",))


def query_count(conn, sql, params=()):
    return conn.execute(sql, params).fetchone()[0]
