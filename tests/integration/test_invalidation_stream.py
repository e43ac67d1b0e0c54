"""The change stream (src/changes.c) against a real PostgreSQL, without the cache.

tests/integration/changes_follow runs one stream on its own event loop and
prints what its owner hears (caught_up, changed, schema, message lines);
these tests write to the backend directly with psycopg and assert what
arrives, what the server is left with (pg_replication_slots), and how the
stream survives failures: a killed walsender, a missing publication, a role
without REPLICATION, no free slot, a server that goes silent.

Everything happens in a database of its own (pgw_changes), with a role of
its own that may replicate (pgw_changes), so the tenant databases the other
tests read never see a publication or a write.

To refresh the captured stream the unit tests decode
(tests/unit/test_changes.stream): PGW_CAPTURE_UPDATE=1 and run
test_capture_decodes_like_the_committed_stream.
"""

import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import HOST, PGWARDEN_BIN, REPO, wait_until

BUILD = PGWARDEN_BIN.parent
TOOL = BUILD / "tests" / "integration" / "changes_follow"
UNIT = BUILD / "tests" / "unit" / "test_changes"
STREAM_DATA = REPO / "tests" / "unit" / "test_changes.stream"

DB = "pgw_changes"
ROLE = "pgw_changes"
PUB = "pgwarden_cache"

SCHEMA = """
CREATE TABLE a (id integer PRIMARY KEY, v text);
CREATE TABLE b (id integer PRIMARY KEY, v text);
CREATE TABLE fence (id bigserial PRIMARY KEY);
CREATE VIEW a_view AS SELECT * FROM a;
CREATE UNLOGGED TABLE scratch (id integer PRIMARY KEY);
CREATE TABLE parent (id integer PRIMARY KEY);
CREATE TABLE child () INHERITS (parent);
CREATE TABLE measures (day date NOT NULL, v integer) PARTITION BY RANGE (day);
CREATE TABLE measures_2024 PARTITION OF measures
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE measures_2024 REPLICA IDENTITY FULL;
ALTER TABLE child REPLICA IDENTITY FULL;
CREATE PUBLICATION pgwarden_cache FOR ALL TABLES;
CREATE PUBLICATION pgw_filtered FOR TABLE a WHERE (id > 0), b;
"""

# The statements behind tests/unit/test_changes.stream: one of every
# pgoutput message kind and tuple shape (see test_changes.c for what the
# unit test expects of each).
CAPTURE_SCHEMA = """
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE items (id integer PRIMARY KEY, label text, price numeric(8,2));
CREATE TABLE notes (id integer, body text, mood mood);
ALTER TABLE notes REPLICA IDENTITY FULL;
CREATE TABLE docs (id integer PRIMARY KEY, n integer, big text);
ALTER TABLE docs ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE PUBLICATION pgwarden_cache FOR ALL TABLES;
SELECT pg_replication_origin_create('pgw_capture_origin');
"""
CAPTURE_WORKLOAD = [
    "INSERT INTO items VALUES (1, 'widget', 9.99), (2, NULL, 24.50)",
    "UPDATE items SET label = 'gadget' WHERE id = 2",
    "UPDATE items SET id = 3 WHERE id = 1",
    "INSERT INTO notes VALUES (1, 'first', 'happy')",
    "UPDATE notes SET body = 'changed' WHERE id = 1",
    "DELETE FROM items WHERE id = 3",
    "DELETE FROM notes",
    "INSERT INTO docs VALUES (1, 0, repeat('x', 5000))",
    "UPDATE docs SET n = 1 WHERE id = 1",
    "BEGIN; INSERT INTO items VALUES (10, 'a', 1); INSERT INTO notes VALUES (2, 'b', 'sad');"
    " UPDATE items SET price = 2 WHERE id = 10; COMMIT",
    "TRUNCATE items, notes",
    "ALTER TABLE items ADD COLUMN stock integer",
    "INSERT INTO items VALUES (20, 'new', 3, 7)",
    "SELECT pg_logical_emit_message(true, 'pgwarden', 'transactional hello')",
    "SELECT pg_logical_emit_message(false, 'pgwarden', 'immediate')",
    # the origin is the session's when the INSERT commits: three statements
    "SELECT pg_replication_origin_session_setup('pgw_capture_origin')",
    "INSERT INTO items VALUES (30, 'from origin', 1, 1)",
    "SELECT pg_replication_origin_session_reset()",
]


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tools():
    """The follower and the unit test binary, built if make check has not."""
    if (BUILD / "Makefile").exists():
        subprocess.run(
            ["make", "-C", str(BUILD), "tests/integration/changes_follow", "tests/unit/test_changes"],
            check=True, capture_output=True, timeout=300,
        )
    assert TOOL.exists(), f"{TOOL} not built: run make check in the build directory"


@pytest.fixture(scope="module")
def changes_db(postgres, tools):
    with postgres.connect() as conn:
        conn.execute(f"CREATE ROLE {ROLE} LOGIN REPLICATION")
        conn.execute("CREATE ROLE pgw_norepl LOGIN")
        conn.execute(f"CREATE DATABASE {DB}")
    with postgres.connect(DB) as conn:
        conn.execute(SCHEMA)
    yield postgres
    with postgres.connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute("DROP DATABASE IF EXISTS pgw_capture WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute("DROP ROLE IF EXISTS pgw_norepl")


def stream_conninfo(pg, db=DB, user=ROLE, host=HOST, port=None):
    return f"host={host} port={port or pg.port} dbname={db} user={user}"


class Follower:
    """One changes_follow process; every line it prints, in order."""

    def __init__(self, tmp_path, conninfo, publication=PUB, args=()):
        self.stderr_path = tmp_path / f"follow-{time.monotonic_ns()}.log"
        self.lines = []
        self.cond = threading.Condition()
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [str(TOOL), "--status-interval", "200", "--timeout", "3000", "--retry", "200",
                 *args, conninfo, publication],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
            )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, pred, since=0, timeout=10, what="a line"):
        """The first line from index `since` on that pred accepts; its index too."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(since, len(self.lines)):
                    if pred(self.lines[i]):
                        return i, self.lines[i]
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(
                        f"no {what} after {timeout}s; lines: {self.lines[since:]}\n"
                        f"stderr: {self.log()[-2000:]}")
                self.cond.wait(min(left, 0.2))

    def command(self, cmd, reply):
        since = self.mark()
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.wait_for(lambda l: l.startswith(reply + " "), since, what=f"reply to {cmd}")[1]

    def stats(self):
        line = self.command("stats", "stats")
        head, _, error = line.partition(" error=")
        fields = dict(kv.split("=", 1) for kv in head.split()[1:])
        fields["error"] = error
        return fields

    def follows(self, qualified):
        schema, name = qualified.split(".")
        return self.command(f"follows {schema} {name}", "follows").endswith(" yes")

    def caught_up(self, since=0, timeout=10):
        _, line = self.wait_for(lambda l: l.startswith("caught_up 1 "), since, timeout,
                                "caught_up 1")
        return int(line.split("epoch=")[1])

    def log(self):
        return self.stderr_path.read_text(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.reader.join(5)


@pytest.fixture
def follow(tmp_path):
    started = []

    def start(conninfo, publication=PUB, args=()):
        f = Follower(tmp_path, conninfo, publication, args)
        started.append(f)
        return f

    yield start
    for f in started:
        f.close()


def write(pg, *statements, db=DB):
    with pg.connect(db) as conn:
        for sql in statements:
            conn.execute(sql)


def changes_of(pg, f, *statements):
    """Run statements (each its own transaction), then a write to fence; the
    changed lines between, in order — exactly what those commits reported."""
    since = f.mark()
    write(pg, *statements)
    with pg.connect(DB) as conn:
        fence = conn.execute("INSERT INTO fence DEFAULT VALUES RETURNING id").fetchone()[0]
    end, _ = f.wait_for(lambda l: l.startswith("changed public.fence "), since,
                        what=f"the fence write {fence}")
    return [l.split()[1] for l in f.lines[since:end] if l.startswith("changed ")]


def slots(pg, prefix="pgwarden_"):
    with pg.connect() as conn:
        return conn.execute(
            "SELECT slot_name, active_pid, confirmed_flush_lsn::text FROM pg_replication_slots"
            " WHERE slot_name LIKE %s", (prefix + "%",)).fetchall()


def lsn(text):
    hi, lo = text.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def warnings(f, needle):
    return [l for l in f.log().splitlines() if "WARNING" in l and needle in l]


# --------------------------------------------------------------------------
# What arrives
# --------------------------------------------------------------------------


def test_each_committed_write_reports_its_tables(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    f.caught_up()
    assert changes_of(pg, f, "INSERT INTO a VALUES (1, 'x'), (2, 'y')") == ["public.a"]
    assert changes_of(pg, f, "UPDATE a SET v = 'z' WHERE id = 1") == ["public.a"]
    assert changes_of(pg, f, "DELETE FROM a WHERE id = 2") == ["public.a"]
    assert changes_of(pg, f, "INSERT INTO b VALUES (1, 'b')") == ["public.b"]
    assert sorted(changes_of(pg, f, "TRUNCATE a, b")) == ["public.a", "public.b"]
    # one transaction, many rows of two tables: each table once, at commit
    assert sorted(changes_of(
        pg, f,
        "BEGIN; INSERT INTO a SELECT g, 'many' FROM generate_series(10, 500) g;"
        " UPDATE a SET v = 'more' WHERE id < 100; INSERT INTO b VALUES (2, 'c'); COMMIT",
    )) == ["public.a", "public.b"]
    # nothing committed, nothing reported; a write that matches no row neither
    assert changes_of(pg, f, "BEGIN; INSERT INTO a VALUES (999, 'no'); ROLLBACK",
                      "UPDATE b SET v = 'none' WHERE id = -1") == []
    # a partition's rows are reported as the partition, an inheritance
    # child's as the child (publish_via_partition_root is off)
    assert changes_of(pg, f, "INSERT INTO measures VALUES ('2024-05-01', 1)") == [
        "public.measures_2024"]
    assert changes_of(pg, f, "INSERT INTO child VALUES (1)") == ["public.child"]

    st = f.stats()
    assert st["state"] == "streaming" and st["caught_up"] == "1"
    assert int(st["transactions"]) >= 9
    assert int(st["changes"]) > 491 + 90  # every row was decoded...
    assert int(st["invalidations"]) < 20  # ...but each table reported once per commit
    assert st["error"] == "-"


def test_writes_before_the_stream_are_not_replayed(changes_db, follow):
    pg = changes_db
    write(pg, "INSERT INTO b VALUES (100, 'before')")
    f = follow(stream_conninfo(pg))
    f.caught_up()
    assert changes_of(pg, f) == []
    # caught up before anything else was said
    assert f.lines[0].startswith("caught_up 1 ")


def test_ddl_reports_a_schema_change(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    f.caught_up()
    # the first description of a table on a connection is not a change
    assert changes_of(pg, f, "INSERT INTO b VALUES (200, 'x')") == ["public.b"]
    since = f.mark()
    write(pg, "ALTER TABLE b ADD COLUMN added integer", "INSERT INTO b VALUES (201, 'y', 1)")
    i, _ = f.wait_for(lambda l: l == "schema public.b", since, what="schema public.b")
    f.wait_for(lambda l: l.startswith("changed public.b "), i, what="the insert after the DDL")
    # a table re-described unchanged (TRUNCATE does that) is no schema change
    since = f.mark()
    assert sorted(changes_of(pg, f, "TRUNCATE b")) == ["public.b"]
    assert "schema public.b" not in f.lines[since:]
    assert f.stats()["schema_changes"] == "1"
    assert f.follows("public.b")


def test_new_table_restarts_the_stream_with_a_new_epoch(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    epoch = f.caught_up()
    assert not f.follows("public.late")
    since = f.mark()
    write(pg, "CREATE TABLE late (id integer PRIMARY KEY)", "INSERT INTO late VALUES (1)")
    f.wait_for(lambda l: l == f"caught_up 0 epoch={epoch}", since, what="caught_up 0")
    assert f.caught_up(since) == epoch + 1
    assert f.follows("public.late")
    assert changes_of(pg, f, "INSERT INTO late VALUES (2)") == ["public.late"]
    assert "is new to the publication" in f.log()


# --------------------------------------------------------------------------
# What is followed
# --------------------------------------------------------------------------


def test_only_tables_whose_every_change_arrives_are_followed(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    f.caught_up()
    assert f.follows("public.a")
    assert f.follows("public.child")
    assert f.follows("public.measures_2024")
    assert not f.follows("public.a_view")  # views: their tables change, not they
    assert not f.follows("public.scratch")  # unlogged: never in the WAL
    assert not f.follows("public.parent")  # its child's rows come as the child
    assert not f.follows("public.measures")  # its partitions' rows come as the partitions
    assert not f.follows("pg_catalog.pg_class")
    assert not f.follows("public.nonexistent")
    assert f.stats()["all_tables"] == "1"

    g = follow(stream_conninfo(pg), "pgw_filtered")
    g.caught_up()
    assert g.follows("public.b")
    assert not g.follows("public.a")  # a row filter hides changes to other rows
    assert not g.follows("public.fence")  # not in the publication
    st = g.stats()
    assert st["all_tables"] == "0" and st["followed"] == "1"


def test_nothing_is_followed_until_caught_up(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg, user="pgw_norepl"))
    wait_until(lambda: int(f.stats()["failures"]) >= 1, 10, "a failure")
    assert not f.follows("public.a")


# --------------------------------------------------------------------------
# What the server is left with
# --------------------------------------------------------------------------


def test_positions_are_acknowledged(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    f.caught_up()
    since = f.mark()
    write(pg, "INSERT INTO a VALUES (3000, 'ack')")
    _, line = f.wait_for(lambda l: l.startswith("changed public.a "), since)
    commit = lsn(line.split("lsn=")[1])
    slot = f.stats()["slot"]
    # the server may recycle WAL up to what was processed
    wait_until(lambda: any(s[0] == slot and lsn(s[2]) >= commit for s in slots(pg)), 10,
               "confirmed_flush_lsn to reach the commit")
    assert lsn(f.stats()["acked_lsn"]) >= commit


def test_stopping_leaves_no_slot(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    f.caught_up()
    slot = f.stats()["slot"]
    # (slots of earlier tests' streams may take a moment to go)
    wait_until(lambda: [s[0] for s in slots(pg)] == [slot], 10, "this stream's slot alone")
    f.close()
    assert f.lines[-2:] == [f.lines[-2], "closed"] and f.lines[-2].startswith("caught_up 0 ")
    wait_until(lambda: slots(pg) == [], 10, "the temporary slot to go")

    # however pgwarden goes away
    g = follow(stream_conninfo(pg))
    g.caught_up()
    assert [s[0] for s in slots(pg)] == [g.stats()["slot"]]
    g.proc.send_signal(signal.SIGKILL)
    g.proc.wait(10)
    wait_until(lambda: slots(pg) == [], 10, "the temporary slot of a killed process to go")


def test_killed_walsender_reconnects(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg))
    epoch = f.caught_up()
    first = f.stats()["slot"]
    for _ in range(2):
        since = f.mark()
        with pg.connect() as conn:
            conn.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                         " WHERE slot_name = %s", (first,))
        f.wait_for(lambda l: l == f"caught_up 0 epoch={epoch}", since, what="caught_up 0")
        new_epoch = f.caught_up(since)
        assert new_epoch == epoch + 1
        epoch = new_epoch
        st = f.stats()
        assert st["slot"] != first
        first = st["slot"]
        # and it follows again
        assert changes_of(pg, f, "INSERT INTO a VALUES (4000 + %d, 'again')" % epoch) == [
            "public.a"]
    # one log line per outage, with the reason, and one when it is over
    assert len(warnings(f, "terminating connection due to administrator command")) == 2
    assert f.log().count("following again") == 2
    wait_until(lambda: [s[0] for s in slots(pg)] == [first], 10, "only the current slot")


# --------------------------------------------------------------------------
# Failures: logged once with the reason, retried with backoff
# --------------------------------------------------------------------------


def test_missing_publication_then_created(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg), "pgw_later")
    wait_until(lambda: int(f.stats()["failures"]) >= 3, 20, "three failed attempts")
    st = f.stats()
    assert st["state"] == "retrying" and st["caught_up"] == "0"
    assert 'publication "pgw_later" does not exist' in st["error"]
    assert len(warnings(f, 'publication "pgw_later" does not exist')) == 1
    assert "CREATE PUBLICATION pgw_later FOR ALL TABLES" in f.log()
    assert st["slot"] == "-"  # found out before any slot was made
    since = f.mark()
    write(pg, "CREATE PUBLICATION pgw_later FOR ALL TABLES")
    try:
        f.caught_up(since)
        assert "following again" in f.log()
        assert changes_of(pg, f, "INSERT INTO b VALUES (300, 'later')") == ["public.b"]
    finally:
        write(pg, "DROP PUBLICATION pgw_later")


def test_role_without_replication_is_refused(changes_db, follow):
    pg = changes_db
    f = follow(stream_conninfo(pg, user="pgw_norepl"))
    wait_until(lambda: int(f.stats()["failures"]) >= 3, 20, "three failed attempts")
    # PostgreSQL 15 says the first, 16 and later the second
    error = f.stats()["error"]
    reason = next((r for r in ("must be superuser or replication role to start walsender",
                               "permission denied to start WAL sender") if r in error), None)
    assert reason, error
    assert len(warnings(f, reason)) == 1


def test_no_free_slot_then_one_frees_up(changes_db, follow):
    pg = changes_db
    wait_until(lambda: slots(pg) == [], 10, "no stream slots left by earlier tests")
    holder = pg.connect()
    try:
        limit = int(holder.execute("SHOW max_replication_slots").fetchone()[0])
        used = holder.execute("SELECT count(*) FROM pg_replication_slots").fetchone()[0]
        for i in range(limit - used):  # temporary: they go with this session
            holder.execute("SELECT pg_create_physical_replication_slot(%s, false, true)",
                           (f"pgw_fill_{i}",))
        f = follow(stream_conninfo(pg))
        wait_until(lambda: int(f.stats()["failures"]) >= 3, 20, "three failed attempts")
        reason = "all replication slots are in use"
        assert reason in f.stats()["error"] and "53400" in f.stats()["error"]
        assert len(warnings(f, reason)) == 1
    finally:
        holder.close()
    f.caught_up()
    assert changes_of(pg, f, "INSERT INTO b VALUES (400, 'slot')") == ["public.b"]


class FreezableProxy:
    """A TCP relay to PostgreSQL that can stop relaying without closing:
    the network failure a stream cannot see except as silence."""

    def __init__(self, port):
        self.target = (HOST, port)
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.stop = threading.Event()
        self.pairs = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        peer = {}
        while not self.stop.is_set():
            for key, _ in sel.select(0.05):
                s = key.fileobj
                if s is self.listener:
                    client, _ = s.accept()
                    server = socket.create_connection(self.target)
                    peer[client], peer[server] = server, client
                    self.pairs.append((client, server))
                    sel.register(client, selectors.EVENT_READ)
                    sel.register(server, selectors.EVENT_READ)
                    continue
                if self.frozen.is_set():
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if data:
                    peer[s].sendall(data)
                else:
                    for x in (s, peer[s]):
                        sel.unregister(x)
                        x.close()
                        peer.pop(x)
            if self.frozen.is_set():
                time.sleep(0.02)  # relay loop pacing while nothing may move
        for s in list(peer):
            s.close()
        self.listener.close()

    def close(self):
        self.stop.set()
        self.thread.join(5)


def test_silent_server_is_given_up_and_reconnected(changes_db, follow):
    pg = changes_db
    proxy = FreezableProxy(pg.port)
    f = None
    try:
        f = follow(stream_conninfo(pg, port=proxy.port), args=("--timeout", "1500"))
        epoch = f.caught_up()
        since = f.mark()
        proxy.frozen.set()
        f.wait_for(lambda l: l == f"caught_up 0 epoch={epoch}", since, what="caught_up 0")
        assert "sent nothing for 1 s" in f.stats()["error"]
        proxy.frozen.clear()
        assert f.caught_up(since) == epoch + 1
        assert changes_of(pg, f, "INSERT INTO b VALUES (500, 'net')") == ["public.b"]
    finally:
        if f:
            f.close()
        proxy.close()  # closes the frozen connection: its walsender ends too


def test_host_name_is_resolved_without_blocking(changes_db, follow):
    pg = changes_db
    # localhost may resolve to ::1 first, where nothing listens: the stream
    # tries each address in turn, like libpq
    f = follow(stream_conninfo(pg, host="localhost"))
    f.caught_up()
    assert changes_of(pg, f, "INSERT INTO b VALUES (600, 'dns')") == ["public.b"]


# --------------------------------------------------------------------------
# The captured stream the unit tests decode
# --------------------------------------------------------------------------


def test_capture_decodes_like_the_committed_stream(changes_db, follow, tmp_path):
    """Today's server still sends what tests/unit/test_changes.stream holds:
    the unit test's expectations hold for a fresh capture of the workload."""
    pg = changes_db
    with pg.connect() as conn:
        conn.execute("DROP DATABASE IF EXISTS pgw_capture WITH (FORCE)")
        conn.execute("CREATE DATABASE pgw_capture")
    with pg.connect("pgw_capture") as conn:
        conn.execute(CAPTURE_SCHEMA)
    capture = tmp_path / "capture.hex"
    f = follow(stream_conninfo(pg, db="pgw_capture"), args=("--capture", str(capture)))
    f.caught_up()
    since = f.mark()
    with pg.connect("pgw_capture") as conn:
        for sql in CAPTURE_WORKLOAD:
            conn.execute(sql)
    f.wait_for(lambda l: l.startswith("changed public.items ") and "lsn=" in l,
               f.wait_for(lambda l: l.startswith("message pgwarden immediate"), since)[0],
               what="the last write")
    f.close()
    with pg.connect() as conn:
        conn.execute("SELECT pg_replication_origin_drop('pgw_capture_origin')")

    with pg.connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    header = [
        "# CopyData messages of a real START_REPLICATION ... LOGICAL stream (pgoutput,",
        "# proto_version '1', messages 'true'), one per line in hex, written by",
        "# tests/integration/changes_follow --capture while",
        f"# test_invalidation_stream.py ran CAPTURE_WORKLOAD against PostgreSQL {version}.",
    ]
    data = tmp_path / "stream"
    data.write_text("\n".join(header) + "\n" + capture.read_text())
    run = subprocess.run([str(UNIT)], env={**os.environ, "PGW_CHANGES_STREAM": str(data),
                                           "CK_RUN_CASE": "captured stream"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "100%" in run.stdout
    if os.environ.get("PGW_CAPTURE_UPDATE") == "1":
        shutil.copy(data, STREAM_DATA)
