#!/usr/bin/python3
"""contrib/bench/invalidation_cache.py — the result cache following writes.

pgwarden with [cache] mode = memory, ttl = 1h, invalidation = replication,
in front of a throwaway PostgreSQL (wal_level = logical; see
invalidation_stream.py, whose cluster this reuses):

  1. invalidation latency: a steady rate of single-row UPDATEs made directly
     on the backend, each to a row whose answer pgwarden has cached (read
     twice through pgwarden first: a miss, then a hit); for each, the time
     from the client's COMMIT returning to the first read through pgwarden
     that shows the new value (reads polled back to back), p50/p99/max.
  2. CPU per 1,000 changes: pgwarden's user+system CPU time (/proc/PID/stat)
     while the backend commits a run of row changes to a table with cached
     answers, per 1,000 row changes, one row per transaction and 100 per
     transaction, minus what an idle pgwarden costs over the same time.

    PGWARDEN=/tmp/build/pgwarden contrib/bench/invalidation_cache.py

Settings (environment): PGWARDEN (default ./pgwarden), RATE=50 (writes per
second in the latency run), DURATION=10 (seconds of it), SINGLE=5000
(single-row transactions in the first CPU run), CHANGES=50000 (row changes
in the second, 100 per transaction), PGBIN=/usr/lib/postgresql/15/bin.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from invalidation_stream import HOST, Cluster, free_port, percentile  # noqa: E402

PGWARDEN = Path(os.environ.get("PGWARDEN", "./pgwarden"))
RATE = float(os.environ.get("RATE", "50"))
DURATION = float(os.environ.get("DURATION", "10"))
SINGLE = int(os.environ.get("SINGLE", "5000"))
CHANGES = int(os.environ.get("CHANGES", "50000"))
KEYS = 20


def wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            sys.exit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


class Gateway:
    def __init__(self, pg_port):
        self.dir = Path(tempfile.mkdtemp(prefix="pgw-bench-invcache-"))
        self.port = free_port()
        backend = f"host={HOST} port={pg_port} dbname=postgres user=postgres"
        (self.dir / "pgwarden.ini").write_text(
            f"[pgwarden]\nlisten_addr = {HOST}\nlisten_port = {self.port}\nauth_type = trust\n"
            "client_tls = disable\nworkers = 2\npool_size = 4\ndefault_access = allow\n"
            "admin_users = bench\nlog_file = " + str(self.dir / "pgwarden.log") + "\n"
            "\n[users]\nbench = bench\n"
            f"\n[tenant.bench]\nbackend = {backend}\n"
            "\n[cache]\nmode = memory\nttl = 1h\ninvalidation = replication\n")
        self.proc = subprocess.Popen([str(PGWARDEN), str(self.dir / "pgwarden.ini")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(self.accepts, 15, "pgwarden to listen")
        wait(self.exact, 15, "the change stream to catch up")

    def accepts(self):
        with socket.socket() as s:
            return s.connect_ex((HOST, self.port)) == 0

    def connect(self, db="bench"):
        return psycopg.connect(f"host={HOST} port={self.port} dbname={db} user=bench",
                               autocommit=True)

    def exact(self):
        with self.connect("pgwarden") as admin:
            cur = admin.execute("SHOW CACHE")
            names = [c.name for c in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        return any(r["cache"] == "stream" and r["mode"] == "exact" for r in rows)

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)


def read(conn, k):
    # a Query message (ClientCursor): the simple protocol, cached by its text
    cur = psycopg.ClientCursor(conn)
    cur.execute(f"SELECT v FROM t WHERE id = {int(k)}")
    return cur.fetchone()[0]


def latency_run(pg, gw):
    lat = []
    with pg.connect() as direct, gw.connect() as through:
        n = int(RATE * DURATION)
        start = time.perf_counter()
        for i in range(n):
            k = i % KEYS
            read(through, k)
            old = read(through, k)  # a hit: the answer is cached
            due = start + i / RATE
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # pacing the write rate, not synchronisation
            direct.execute("UPDATE t SET v = v + 1 WHERE id = %s", (k,))
            committed = time.perf_counter()
            while read(through, k) == old:
                pass
            lat.append((time.perf_counter() - committed) * 1000)
    return n, lat


def cpu_run(pg, gw, rows_per_tx, changes):
    with pg.connect() as direct, gw.connect() as through:
        for k in range(KEYS):
            read(through, k)
        txs = changes // rows_per_tx
        cpu0, t0 = gw.cpu_seconds(), time.perf_counter()
        for i in range(txs):
            lo = (i * rows_per_tx) % 1000
            direct.execute("UPDATE t SET v = v + 1 WHERE id >= %s AND id < %s",
                           (lo, lo + rows_per_tx))
        # every change reported: the cached answer of the last row written shows it
        last = (txs - 1) * rows_per_tx % 1000
        want = direct.execute("SELECT v FROM t WHERE id = %s", (last,)).fetchone()[0]
        wait(lambda: read(through, last) == want, 60, "the stream to report the run")
        used, wall = gw.cpu_seconds() - cpu0, time.perf_counter() - t0
    idle0 = gw.cpu_seconds()
    time.sleep(min(wall, 5))  # measuring idle cost, not synchronisation
    idle = (gw.cpu_seconds() - idle0) / min(wall, 5) * wall
    return txs * rows_per_tx, used, max(used - idle, 0.0), wall


def main():
    if not PGWARDEN.exists():
        sys.exit(f"bench: {PGWARDEN} not found (set PGWARDEN)")
    pg = Cluster()
    gw = None
    try:
        with pg.connect() as conn:
            conn.execute("CREATE TABLE t (id integer PRIMARY KEY, v bigint NOT NULL)")
            conn.execute("INSERT INTO t SELECT g, 0 FROM generate_series(0, 999) g")
            conn.execute("CREATE PUBLICATION pgwarden_cache FOR ALL TABLES")
        gw = Gateway(pg.port)
        n, lat = latency_run(pg, gw)
        print(f"invalidation latency, {n} writes at {RATE:g}/s (commit -> read through "
              f"pgwarden shows it): p50 {percentile(lat, 50):.1f} ms, "
              f"p99 {percentile(lat, 99):.1f} ms, max {max(lat):.1f} ms")
        for rows_per_tx, changes in ((1, SINGLE), (100, CHANGES)):
            total, used, net, wall = cpu_run(pg, gw, rows_per_tx, changes)
            print(f"cpu, {total} changes, {rows_per_tx} per transaction, {wall:.1f} s: "
                  f"{used * 1000 / total * 1000:.1f} ms per 1,000 changes "
                  f"({net * 1000 / total * 1000:.1f} ms above idle)")
    finally:
        if gw:
            gw.stop()
        pg.stop()


if __name__ == "__main__":
    main()
