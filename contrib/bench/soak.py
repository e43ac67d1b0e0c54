#!/usr/bin/python3
"""soak.py -- pgwarden under a long mixed load: does anything grow?

Starts its own PostgreSQL (the integration harness's two-tenant cluster),
the stand-in LLM (contrib/fake-llm) and pgwarden, then runs CLIENTS client
threads for DURATION seconds. Each client logs in as one of two tenants and
loops over a mix of

    plain queries (simple and extended protocol), checked against the tenant
    statements pgwarden refuses (DML: 42501 expected)
    ASKs answered by the stand-in (a set of 40 questions, so the translation
    cache both hits and misses), checked against the tenant
    reconnects (a client logs out and in again every few dozen operations)

paced by a short think time so that the load is steady rather than a race.
Every INTERVAL seconds it samples pgwarden's VmRSS (/proc/PID/status) and its
descriptor count (/proc/PID/fd).

"Flat", the pass criterion, is defined on the samples of the second half of
the run (the first half is warm-up: pools, caches and allocator arenas fill):
  * RSS: the largest second-half sample exceeds the first second-half sample
    by less than max(RSS_SLACK_MB, 5 %), and (runs of 300 s and more, where
    it means something) the least-squares slope over the second half,
    extrapolated to an hour, is under RSS_SLOPE_MB_PER_H;
  * descriptors: the largest second-half sample exceeds the largest first-half
    sample by at most FD_SLACK (clients come and go, so the count moves with
    them), and within 15 s of the last client leaving, pgwarden holds what it
    held at start-up (+2), at most its pooled backend sessions (pool_size per
    tenant) and one catalog-check connection per backend database, at most LLM_CACHE_MAX idle connections to the model (curl's
    connection cache) and no client connection;
  * correctness: no wrong tenant in any answer, no unexpected error.
A run that fails any of these exits 1. The last line is "soak: PASS ..." or
"soak: FAIL ...", and with --summary also "N passed, N failed" (one test).

Usage (as root or the postgres user; PostgreSQL 15 and /usr/bin/python3):
    contrib/bench/soak.py                     # 200 clients, 600 s, samples every 10 s
    contrib/bench/soak.py --smoke             # 50 clients, 60 s, every 5 s (test.sh)
    PGWARDEN_BIN=/tmp/build/pgwarden contrib/bench/soak.py --clients 100 --duration 300

Every request goes to 127.0.0.1 only and every loop is bounded by the
duration; the script stops everything it started.
"""

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import psycopg  # noqa: E402

import conftest  # noqa: E402  (PgCluster, Pgwarden, rss_kb)
from askutil import FakeLLM, llm_section, sql_reply  # noqa: E402

RSS_SLACK_MB = 8
RSS_SLOPE_MB_PER_H = 20
FD_SLACK = 8
LLM_CACHE_MAX = 16  # idle keep-alive connections curl may cache, both workers
TENANTS = [("alice", "acme"), ("bob", "globex")]
QUESTIONS = [f"how many orders are there, variant {i}" for i in range(40)]


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_breakdown(pid, ports):
    """pgwarden's descriptors by what they are: TCP connections by the port
    of their peer (ports: {port: name}), listening and other sockets, and
    everything else (pipes, eventfds, files)."""
    peers = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], parts[9]
            rport = int(remote.rsplit(":", 1)[1], 16)
            lport = int(local.rsplit(":", 1)[1], 16)
            peers[inode] = ports.get(rport) or ("client" if lport in ports.values() else
                                                "client" if rport else "listening")
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            kind = peers.get(target[8:-1], "other socket")
        else:
            kind = "other"
        out[kind] = out.get(kind, 0) + 1
    return out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {"query": 0, "extended": 0, "refusal": 0, "ask": 0, "reconnect": 0}
        self.wrong = []
        self.errors = []

    def add(self, kind):
        with self.lock:
            self.counts[kind] += 1

    def error(self, text):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(text)

    def wrong_answer(self, text):
        with self.lock:
            self.wrong.append(text)


def client_loop(gw, user, tenant, deadline, stats, seed, think):
    rng = random.Random(seed)
    conn = None
    ops_left = 0
    while time.monotonic() < deadline:
        try:
            if conn is None or ops_left <= 0:
                if conn is not None:
                    conn.close()
                    stats.add("reconnect")
                conn = gw.connect(user, tenant)
                ops_left = rng.randint(20, 60)
            ops_left -= 1
            r = rng.random()
            if r < 0.55:
                got = conn.execute("SELECT name FROM tenant_marker").fetchone()[0]
                if got != tenant:
                    stats.wrong_answer(f"{user}: query saw {got}")
                stats.add("query")
            elif r < 0.75:
                n = rng.randint(1, 2)  # globex has two customers, acme three
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM customers WHERE id <= %s", (n,),
                                prepare=rng.random() < 0.5)
                    got = cur.fetchone()[0]
                if got != n:
                    stats.wrong_answer(f"{user}: extended query counted {got}, not {n}")
                stats.add("extended")
            elif r < 0.90:
                try:
                    conn.execute("DELETE FROM customers")
                    stats.wrong_answer(f"{user}: DELETE was not refused")
                except psycopg.errors.InsufficientPrivilege:
                    stats.add("refusal")
            else:
                q = rng.choice(QUESTIONS)
                got = conn.execute(f"ASK {q}").fetchone()[0]
                if got != tenant:
                    stats.wrong_answer(f"{user}: ASK answered {got}")
                stats.add("ask")
        except psycopg.Error as exc:
            stats.error(f"{user}: {exc.sqlstate} {str(exc).splitlines()[0]}")
            try:
                conn.close()
            except Exception:
                pass
            conn = None
        time.sleep(think * rng.uniform(0.5, 1.5))  # think time: pacing, not synchronisation
    if conn is not None:
        conn.close()


def slope_per_hour(points):
    """Least-squares slope of (t seconds, value) points, per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--think", type=float, default=0.05, help="mean pause between operations (s)")
    ap.add_argument("--smoke", action="store_true", help="50 clients, 60 s, samples every 5 s")
    ap.add_argument("--summary", action="store_true", help='also print "N passed, N failed"')
    args = ap.parse_args()
    if args.smoke:
        args.clients, args.duration, args.interval = 50, 60, 5
    binary = Path(os.environ.get("PGWARDEN_BIN", REPO / "pgwarden"))
    if not binary.exists():
        sys.exit(f"soak: {binary} not built (set PGWARDEN_BIN)")

    root = tempfile.mkdtemp(prefix="pgw-soak-")
    pg = conftest.PgCluster(root)
    llm = gw = None
    ok = False
    try:
        pg.start()  # max_connections = 400
        pg.load_tenants()
        with pg.connect() as su:
            su.execute("CHECKPOINT")
        llm = FakeLLM()
        llm.script([{"match": "", "reply": sql_reply("SELECT name FROM tenant_marker")}])
        gw_dir = Path(root) / "pgwarden"
        gw_dir.mkdir()
        pool = max(10, args.clients // 8)
        gw = conftest.Pgwarden(gw_dir, pg, settings={
            "pool_size": str(pool), "pool_timeout": "30s", "workers": "2"},
            extra=llm_section(llm, timeout="10s"))
        gw.start()
        # Warm-up, then the start-up descriptor count: both tenants, and an
        # ASK on each worker (a worker's first ASK makes its curl multi
        # handle, which keeps a wake-up socket pair for good).
        for i in range(4):
            user, tenant = TENANTS[i % 2]
            with gw.connect(user, tenant) as c:
                c.execute("ASK warm-up")
        fds_at_start = fd_count(gw.pid)
        ports = {pg.port: "postgres", llm.port: "llm"}
        kinds_at_start = fd_breakdown(gw.pid, ports)

        stats = Stats()
        started = time.monotonic()
        deadline = started + args.duration
        threads = []
        for i in range(args.clients):
            user, tenant = TENANTS[i % 2]
            t = threading.Thread(target=client_loop, daemon=True,
                                 args=(gw, user, tenant, deadline, stats, i, args.think))
            threads.append(t)
        for t in threads:
            t.start()

        samples = []  # (t, rss_kb, fds)
        print(f"soak: {args.clients} clients for {args.duration:.0f} s against pid {gw.pid}, "
              f"pool_size {pool}; samples every {args.interval:.0f} s")
        print(f"{'t (s)':>7} {'RSS (MB)':>9} {'fds':>5} {'ops':>8}")
        next_sample = started
        while True:
            now = time.monotonic()
            if now >= next_sample:
                if not gw.alive():
                    raise AssertionError("pgwarden exited during the soak")
                rss, fds = conftest.rss_kb(gw.pid), fd_count(gw.pid)
                samples.append((now - started, rss, fds))
                with stats.lock:
                    ops = sum(stats.counts.values())
                print(f"{now - started:7.0f} {rss / 1024:9.1f} {fds:5d} {ops:8d}", flush=True)
                next_sample += args.interval
            if now >= deadline:
                break
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        for t in threads:
            t.join(60)

        # Everyone gone: what stays is what pgwarden had at start-up, plus
        # at most its pooled backend sessions, the change service's catalog
        # check (one connection per backend database, held for good) and
        # curl's cache of idle connections to the model (bounded by curl).
        def leftovers():
            kinds = fd_breakdown(gw.pid, ports)
            bad = []
            for kind, n in kinds.items():
                if kind == "postgres" and n > 2 * pool + 2:
                    bad.append(f"{n} backend sessions (pool_size {pool} per tenant, and one "
                               "catalog check per backend database)")
                elif kind == "llm" and n > LLM_CACHE_MAX:
                    bad.append(f"{n} connections to the model")
                elif kind == "client" and n:
                    bad.append(f"{n} client connections")
                elif kind not in ("postgres", "llm", "client") and \
                        n > kinds_at_start.get(kind, 0) + 2:
                    bad.append(f"{n} {kind} (start-up {kinds_at_start.get(kind, 0)})")
            return bad, kinds

        t0 = time.monotonic()
        bad, breakdown = leftovers()
        while bad and time.monotonic() - t0 < 15:
            time.sleep(0.2)
            bad, breakdown = leftovers()
        fds_after = fd_count(gw.pid)
        rss_after = conftest.rss_kb(gw.pid)

        half = args.duration / 2
        first = [s for s in samples if s[0] < half]
        second = [s for s in samples if s[0] >= half]
        problems = []
        rss_growth_mb = rss_slope = fd_growth = 0
        if len(second) < 2 or not first:
            problems.append("too few samples for a verdict")
        else:
            base = second[0][1]
            rss_growth_mb = (max(s[1] for s in second) - base) / 1024
            rss_bound = max(RSS_SLACK_MB, 0.05 * base / 1024)
            rss_slope = slope_per_hour([(s[0], s[1] / 1024) for s in second])
            fd_growth = max(s[2] for s in second) - max(s[2] for s in first)
            if rss_growth_mb >= rss_bound:
                problems.append(f"RSS grew {rss_growth_mb:.1f} MB in the second half "
                                f"(bound {rss_bound:.1f})")
            if args.duration >= 300 and rss_slope >= RSS_SLOPE_MB_PER_H:
                problems.append(f"RSS slope {rss_slope:.1f} MB/h in the second half "
                                f"(bound {RSS_SLOPE_MB_PER_H})")
            if fd_growth > FD_SLACK:
                problems.append(f"descriptors grew by {fd_growth} in the second half")
        if bad:
            problems.append("after every client left: " + ", ".join(bad))
        if stats.wrong:
            problems.append(f"{len(stats.wrong)} wrong answers, e.g. {stats.wrong[0]}")
        if stats.errors:
            problems.append(f"{len(stats.errors)}+ unexpected errors, e.g. {stats.errors[0]}")
        if not gw.alive():
            problems.append("pgwarden is not running any more")

        counts = ", ".join(f"{k} {v}" for k, v in stats.counts.items())
        print(f"operations: {counts}")
        if samples:
            print(f"RSS: start {samples[0][1] / 1024:.1f} MB, peak "
                  f"{max(s[1] for s in samples) / 1024:.1f} MB, second-half growth "
                  f"{rss_growth_mb:.1f} MB, slope {rss_slope:.1f} MB/h, after the clients left "
                  f"{rss_after / 1024:.1f} MB")
            print(f"descriptors: start-up {fds_at_start}, peak {max(s[2] for s in samples)}, "
                  f"second-half growth {fd_growth}, after the clients left {fds_after} "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(breakdown.items()))})")
        ok = not problems
        if ok:
            print(f"soak: PASS ({args.clients} clients, {args.duration:.0f} s)")
        else:
            print("soak: FAIL: " + "; ".join(problems))
    except Exception as exc:  # a broken harness is a failed run, with its reason
        print(f"soak: FAIL: {type(exc).__name__}: {exc}")
        if gw is not None:
            print(gw.log_tail(20))
    finally:
        if gw is not None:
            gw.stop()
        if llm is not None:
            llm.stop()
        pg.stop()
        if ok:
            import shutil
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"soak: logs kept in {root}")
    if args.summary:
        print(f"{int(ok)} passed, {int(not ok)} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    sys.exit(main())
