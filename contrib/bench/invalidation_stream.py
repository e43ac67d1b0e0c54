#!/usr/bin/python3
"""contrib/bench/invalidation_stream.py — what following the change stream costs.

Measures the change stream (src/changes.c) on its own, without the cache,
through tests/integration/changes_follow:

  1. stream latency: a steady rate of single-row UPDATE transactions; for
     each, the time from the client's COMMIT returning to the follower
     printing "changed public.t" (p50, p99, max). This is the floor of the
     cache's invalidation latency (the cache adds its own drop on top).
  2. CPU per 1,000 changes: the follower's user+system CPU time
     (/proc/PID/stat) over a run of changes, per 1,000 row changes, for
     one row per transaction and for 1,000 rows per transaction.

It starts a throwaway PostgreSQL (wal_level = logical, fsync off) in a temp
dir on a free port; as root it runs it as the postgres user. Needs Debian's
postgresql-15 and python3-psycopg.

    FOLLOW=/tmp/build/tests/integration/changes_follow contrib/bench/invalidation_stream.py

Settings (environment): FOLLOW (default: ./tests/integration/changes_follow,
built by make check), RATE=200 (transactions per second in the latency
run), DURATION=10 (seconds of it), SINGLE=20000 (single-row transactions
in the first CPU run), CHANGES=200000 (row changes in the second, 1,000 per
transaction), PGBIN=/usr/lib/postgresql/15/bin.
"""

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

FOLLOW = Path(os.environ.get("FOLLOW", "tests/integration/changes_follow"))
RATE = int(os.environ.get("RATE", "200"))
DURATION = float(os.environ.get("DURATION", "10"))
CHANGES = int(os.environ.get("CHANGES", "200000"))
SINGLE = int(os.environ.get("SINGLE", "20000"))
PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def as_owner(argv):
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    subprocess.run(argv, check=True, capture_output=True)


class Cluster:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="pgw-bench-inval-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        data = self.root / "data"
        as_owner([str(PGBIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-locale", "--no-sync"])
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses={HOST} -c wal_level=logical"
                " -c fsync=off -c full_page_writes=off")
        as_owner([str(PGBIN / "pg_ctl"), "-D", str(data), "-l", str(self.root / "log"), "-w",
                  "-o", opts, "start"])
        self.data = data

    def connect(self):
        return psycopg.connect(f"host={HOST} port={self.port} dbname=postgres user=postgres",
                               autocommit=True)

    def stop(self):
        try:
            as_owner([str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class Follower:
    def __init__(self, port):
        self.proc = subprocess.Popen(
            [str(FOLLOW), f"host={HOST} port={port} dbname=postgres user=postgres",
             "pgwarden_cache"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)
        self.cond = threading.Condition()
        self.changed = []  # arrival time of each "changed public.t"
        self.caught_up = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.perf_counter()
            with self.cond:
                if line.startswith("changed public.t "):
                    self.changed.append(now)
                elif line.startswith("caught_up 1"):
                    self.caught_up = True
                self.cond.notify_all()

    def wait(self, pred, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    sys.exit("bench: the follower did not keep up (timed out)")
                self.cond.wait(left)

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency_run(pg, f):
    commits = []
    with pg.connect() as conn:
        n = int(RATE * DURATION)
        start = time.perf_counter()
        for i in range(n):
            due = start + i / RATE
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)  # pacing the write rate, not synchronisation
            if i == 0:
                base = len(f.changed)
            conn.execute("UPDATE t SET v = v + 1 WHERE id = %s", (i % 1000,))
            commits.append((time.perf_counter(), base))
    # commits are reported in commit order: the k-th commit is the k-th line
    first = commits[0][1]
    f.wait(lambda: len(f.changed) >= first + n)
    lat = [(f.changed[first + k] - t) * 1000 for k, (t, _) in enumerate(commits)]
    return n, lat


def cpu_run(pg, f, rows_per_tx, changes):
    with pg.connect() as conn:
        before_lines = len(f.changed)
        cpu0 = f.cpu_seconds()
        txs = changes // rows_per_tx
        for i in range(txs):
            lo = (i * rows_per_tx) % 100000
            conn.execute("UPDATE t SET v = v + 1 WHERE id >= %s AND id < %s",
                         (lo, lo + rows_per_tx))
        f.wait(lambda: len(f.changed) >= before_lines + txs, timeout=600)
        return txs * rows_per_tx, f.cpu_seconds() - cpu0


def main():
    if not FOLLOW.exists():
        sys.exit(f"bench: {FOLLOW} not found (make check builds it; set FOLLOW)")
    pg = Cluster()
    f = None
    try:
        with pg.connect() as conn:
            conn.execute("CREATE TABLE t (id integer PRIMARY KEY, v bigint NOT NULL)")
            conn.execute("INSERT INTO t SELECT g, 0 FROM generate_series(0, 99999) g")
            conn.execute("CREATE PUBLICATION pgwarden_cache FOR ALL TABLES")
        f = Follower(pg.port)
        f.wait(lambda: f.caught_up, 30)

        n, lat = latency_run(pg, f)
        print(f"stream latency, {n} single-row transactions at {RATE}/s: "
              f"p50 {percentile(lat, 50):.2f} ms, p99 {percentile(lat, 99):.2f} ms, "
              f"max {max(lat):.2f} ms")
        for rows, total in ((1, SINGLE), (1000, CHANGES)):
            changes, cpu = cpu_run(pg, f, rows, total)
            print(f"CPU per 1,000 changes, {rows} row(s) per transaction: "
                  f"{cpu / changes * 1000 * 1000:.2f} ms ({changes} changes, {cpu:.2f} s CPU)")
    finally:
        if f:
            f.close()
        pg.stop()


if __name__ == "__main__":
    main()
