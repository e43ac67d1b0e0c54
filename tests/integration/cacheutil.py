"""Helpers shared by the result cache's integration tests (test_cache*.py):
reading the cache's outcomes from the audit log, running a statement on one
protocol or the other, and counting on the backend who waits for a lock."""

import psycopg

from askutil import audit_records
from conftest import wait_until


class Audit:
    """The audit log, read as it grows."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        return len(audit_records(self.path))

    def cache_of(self, since, sql, count=1, timeout=5):
        """The cache outcomes of the first `count` records for sql after mark
        `since` that say something about the cache."""
        def found():
            recs = [r for r in audit_records(self.path)[since:]
                    if r.get("sql") == sql and "cache" in r]
            return recs[:count] if len(recs) >= count else None
        recs = wait_until(found, timeout, f"{count} audit records for {sql!r}")
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
