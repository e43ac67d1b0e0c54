"""Shared fixtures for pgwarden's integration tests.

What the harness provides:
  * one real PostgreSQL cluster per test session (initdb'd in a temp dir, run
    as the `postgres` OS user when the tests run as root, as CI does), with two
    tenant databases, acme and globex, whose rows tell them apart;
  * `pgwarden`, a per-module factory: each call writes a config and userlist
    into a fresh directory, starts the binary (PGWARDEN_BIN, default
    <repo>/pgwarden), waits until its port accepts connections and returns a
    handle; every instance is stopped when the module ends;
  * a per-test time limit (default 60 s, `@pytest.mark.timeout(N)` to change),
    enforced with SIGALRM so a hung gateway fails one test instead of the run.

Synchronisation is always "poll a condition until a deadline", never a bare
sleep. When a test fails, the tail of every running pgwarden's log is attached
to the report.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

import pgwire

REPO = Path(__file__).resolve().parents[2]
PGWARDEN_BIN = Path(os.environ.get("PGWARDEN_BIN", REPO / "pgwarden"))
PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
DEFAULT_TIMEOUT = int(os.environ.get("PGW_TEST_TIMEOUT", "60"))
HOST = "127.0.0.1"

# Every test user's password is "<user>-secret". dave is in the userlist but
# not in [users]: a known password for a user no tenant admits.
PASSWORDS = {u: f"{u}-secret" for u in ("alice", "bob", "carol", "dave", "admin")}
DEFAULT_USERS = {"alice": "acme", "bob": "globex", "carol": "acme, globex", "admin": "acme"}


# --------------------------------------------------------------------------
# Per-test time limit
# --------------------------------------------------------------------------


class TestTimeout(Exception):
    pass


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): fail the test after this long")
    config.addinivalue_line(
        "markers", "serial: run with no other test beside it (scripts/pytest.sh's serial pass)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    marker = item.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker else DEFAULT_TIMEOUT

    def on_alarm(signum, frame):
        raise TestTimeout(f"{item.nodeid} took longer than {seconds}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------
# Corpus sampling (the sanitizer stage)
# --------------------------------------------------------------------------
#
# PGW_TEST_SAMPLE=N keeps every Nth case of each test function that has at
# least CORPUS_MIN parametrized cases (the hostile and compatibility corpora:
# thousands of statements through one code path each) and every test that is
# not such a corpus. scripts/sanitize.sh sets it: under ASan the corpora would
# cost minutes while the statements' memory behaviour is the policy's, which
# the sanitized unit tests and the policy fuzz target cover; a sample still
# crosses every code path the corpora reach (both protocols, each module).
# The cases kept shift with PGW_TEST_SAMPLE_SEED so repeated runs cover
# different statements.

CORPUS_MIN = 100


def pytest_collection_modifyitems(config, items):
    _sample(config, items)
    _serial_pass(config, items)
    _heavy_modules_first(items)


def _sample(config, items):
    every = int(os.environ.get("PGW_TEST_SAMPLE", "1") or 1)
    if every <= 1:
        return
    seed = int(os.environ.get("PGW_TEST_SAMPLE_SEED", "0") or 0)
    by_function = {}
    for item in items:
        by_function.setdefault(item.nodeid.split("[", 1)[0], []).append(item)
    position = {id(item): i for group in by_function.values() for i, item in enumerate(group)}
    keep, dropped = [], []
    for item in items:
        group = by_function[item.nodeid.split("[", 1)[0]]
        if len(group) < CORPUS_MIN or (position[id(item)] + seed) % every == 0:
            keep.append(item)
        else:
            dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


# --------------------------------------------------------------------------
# Parallel runs (pytest-xdist, scripts/pytest.sh)
# --------------------------------------------------------------------------
#
# scripts/pytest.sh runs the suite in two passes: the parallel one
# (PGW_TEST_SERIAL=skip, pytest-xdist, one worker per core, whole modules per
# worker: `--dist loadfile`), then a serial one (PGW_TEST_SERIAL=only) for the
# tests marked `serial` -- a test whose assertion is about wall time or
# throughput of the whole machine, which a second worker beside it would
# make flaky. A plain pytest run (PGW_TEST_SERIAL unset) runs everything.
#
# Each worker is a pytest session of its own, so it has its own PostgreSQL
# cluster and Redis (session fixtures, free ports, temp directories), and a
# module's gateways (the module-scoped `pgwarden` factory) live in the one
# worker that runs the module. Nothing the fixtures create is shared between
# workers: no fixed port, no fixed path.
#
# xdist hands modules out in collection order, one to whichever worker is
# free; the longest modules go first so that the last one to start is short
# (longest-first scheduling). HEAVY_MODULES lists them longest first (measured
# with --junitxml, serial runs on 2 cores, of the plain build and of the ASan
# build with its sampled corpora); a module not listed keeps its place after
# them. A stale list costs wall time, never a test.

HEAVY_MODULES = [
    "test_isolation", "test_catalog", "test_psql", "test_faults", "test_txn",
    "test_hostile_catalog", "test_redteam3", "test_txn_clients", "test_robustness",
    "test_protocol", "test_redteam", "test_clients", "test_cache", "test_ask", "test_compat",
    "test_idle_clients", "test_invalidation_stream",
]


def _serial_pass(config, items):
    which = os.environ.get("PGW_TEST_SERIAL", "")
    if which not in ("skip", "only"):
        return
    keep, dropped = [], []
    for item in items:
        serial = item.get_closest_marker("serial") is not None
        (keep if serial == (which == "only") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _heavy_modules_first(items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # a serial run keeps the order it always had
    def module(item):
        return Path(item.nodeid.split("::", 1)[0]).stem

    rank = {name: i for i, name in enumerate(HEAVY_MODULES)}
    first = {}
    for i, item in enumerate(items):
        first.setdefault(module(item), i)
    # list.sort is stable: the tests of one module keep their order
    items.sort(key=lambda it: (rank.get(module(it), len(rank)), first[module(it)]))


_RUNNING = []  # pgwarden instances alive right now, for failure reports


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for gw in _RUNNING:
            report.sections.append((f"pgwarden log {gw.dir}", gw.log_tail(40)))


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throwaway self-signed server certificate and key (TLS tests)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(condition, timeout, what, interval=0.05):
    """Poll condition() until it returns a true value; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def rss_kb(pid):
    """Resident set size of a process in kB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

TENANT_SQL = """
CREATE TABLE tenant_marker (name text NOT NULL);
CREATE TABLE customers (
    id integer PRIMARY KEY,
    tenant_id text NOT NULL,
    name text NOT NULL,
    email text,
    ssn text
);
CREATE TABLE orders (
    id integer PRIMARY KEY,
    customer_id integer REFERENCES customers,
    total numeric(10, 2) NOT NULL,
    placed_at timestamptz NOT NULL
);
CREATE TABLE products (id integer PRIMARY KEY, name text NOT NULL, price numeric(10, 2));
CREATE TABLE internal_notes (id integer PRIMARY KEY, note text);
-- one row of many types, one row of NULLs: binary round trips
CREATE TABLE kinds (
    i integer, b bigint, t text, n numeric, f float8, bo boolean, d date,
    ts timestamptz, by bytea, arr integer[], j jsonb, u uuid
);
INSERT INTO kinds VALUES
    (42, 9000000000, 'héllo', 12345.678, 2.5, true, '2024-02-29',
     '2024-02-29 12:34:56+00', '\\x00ff10', '{1,2,3}', '{"k": [1, null]}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO products VALUES (1, 'widget', 9.99), (2, 'gadget', 24.50);
"""

TENANT_ROWS = {
    "acme": [
        (1, "Ada Acme", "ada@acme.test", "111-11-1111"),
        (2, "Abe Acme", "abe@acme.test", "111-11-2222"),
        (3, "Amy Acme", "amy@acme.test", "111-11-3333"),
    ],
    "globex": [
        (1, "Gus Globex", "gus@globex.test", "222-22-1111"),
        (2, "Gia Globex", "gia@globex.test", "222-22-2222"),
    ],
}


class PgCluster:
    def __init__(self, root):
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = free_port()
        self.log = self.root / "postgres.log"

    def _run_as_owner(self, argv, **kw):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)

    def start(self):
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run_as_owner(
            [str(PG_BINDIR / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]
        )
        # A port found free can still fail to bind (an outgoing connection may
        # take it as its ephemeral port meanwhile): retry on another.
        for attempt in range(3):
            try:
                self._pg_ctl_start()
                return
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise AssertionError("PostgreSQL did not start:\n" + self.log.read_text())
                self.port = free_port()

    def _pg_ctl_start(self):
        options = " ".join([
            f"-p {self.port}",
            f"-k {self.root}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=400",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
            # logical decoding for the change stream (test_invalidation*.py);
            # the other tests neither notice nor pay for it
            "-c wal_level=logical",
        ])
        self._run_as_owner(
            [str(PG_BINDIR / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
             "-w", "-t", "60", "-o", options, "start"]
        )

    def stop(self):
        try:
            self._run_as_owner(
                [str(PG_BINDIR / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            )
        except subprocess.CalledProcessError:
            pass

    def conninfo(self, dbname, user="reader"):
        return f"host={HOST} port={self.port} dbname={dbname} user={user}"

    def connect(self, dbname="postgres"):
        """A direct superuser connection, bypassing pgwarden."""
        return psycopg.connect(self.conninfo(dbname, "postgres"), autocommit=True)

    def load_tenants(self):
        with self.connect() as conn:
            conn.execute("CREATE ROLE reader LOGIN")
            for tenant in TENANT_ROWS:
                conn.execute(f"CREATE DATABASE {tenant}")
        for tenant, rows in TENANT_ROWS.items():
            with self.connect(tenant) as conn:
                conn.execute(TENANT_SQL)
                conn.execute("INSERT INTO tenant_marker VALUES (%s)", (tenant,))
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO customers VALUES (%s, %s, %s, %s, %s)",
                        [(i, tenant, name, email, ssn) for i, name, email, ssn in rows],
                    )
                    cur.executemany(
                        "INSERT INTO orders VALUES (%s, %s, %s, '2024-01-15 10:00+00')",
                        [(i, i, 100 * i) for i, *_ in rows],
                    )
                conn.execute(f"INSERT INTO internal_notes VALUES (1, 'secret note of {tenant}')")
                conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
        # With synchronous_commit = off, a test that kills a backend makes the
        # server restart and lose unflushed commits (the set-up's GRANTs);
        # a checkpoint makes the fixture durable for every later test.
        with self.connect() as conn:
            conn.execute("CHECKPOINT")


@pytest.fixture(scope="session")
def postgres():
    root = tempfile.mkdtemp(prefix="pgw-pg-")
    cluster = PgCluster(root)
    try:
        cluster.start()
        cluster.load_tenants()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# pgwarden
# --------------------------------------------------------------------------


def userlist_secret(user, password, secret_format):
    if secret_format == "plain":
        return password
    if secret_format == "md5":
        return pgwire.md5_secret(user, password)
    if secret_format == "scram":
        return pgwire.scram_verifier(password)
    raise ValueError(secret_format)


class Pgwarden:
    """One pgwarden process with its own directory, config, userlist and log."""

    def __init__(self, directory, postgres, settings=None, users=None, secret_format="plain",
                 extra="", passwords=None):
        self.dir = Path(directory)
        self.postgres = postgres
        self.port = free_port()
        self.config_path = self.dir / "pgwarden.ini"
        self.userlist_path = self.dir / "users.txt"
        self.log_path = self.dir / "pgwarden.log"
        self.proc = None
        self.passwords = dict(passwords or PASSWORDS)
        self.write_userlist(secret_format)
        self.write_config(settings, users, extra)

    # -- files -----------------------------------------------------------

    def write_userlist(self, secret_format="plain"):
        lines = [f'"{u}" "{userlist_secret(u, p, secret_format)}"' for u, p in self.passwords.items()]
        self.userlist_path.write_text("\n".join(lines) + "\n")

    def config_text(self, settings=None, users=None, extra=""):
        base = {
            "listen_addr": HOST,
            "listen_port": str(self.port),
            "auth_type": "scram-sha-256",
            "auth_file": self.userlist_path.name,
            "client_tls": "disable",
            "workers": "2",
            "pool_size": "10",
            "pool_timeout": "10s",
            "default_access": "allow",
            # slow statements for cancel, shutdown and pool tests
            "allowed_functions": "pg_catalog.pg_sleep",
        }
        base.update(settings or {})
        lines = ["[pgwarden]"]
        lines += [f"{k} = {v}" for k, v in base.items() if v is not None]
        lines += ["", "[users]"]
        lines += [f"{u} = {t}" for u, t in (users or DEFAULT_USERS).items()]
        for tenant in TENANT_ROWS:
            lines += ["", f"[tenant.{tenant}]", f"backend = {self.postgres.conninfo(tenant)}"]
        return "\n".join(lines) + "\n" + extra

    def write_config(self, settings=None, users=None, extra=""):
        self.config_path.write_text(self.config_text(settings, users, extra))

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n):
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- process ---------------------------------------------------------

    def start(self, timeout=15):
        assert PGWARDEN_BIN.exists(), f"{PGWARDEN_BIN} not built (set PGWARDEN_BIN)"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(PGWARDEN_BIN), str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _RUNNING.append(self)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"pgwarden exited with {self.proc.returncode} during start-up:\n"
                    + self.log_tail(30)
                )
            return port_accepts(self.port)

        wait_until(ready, timeout, f"pgwarden to accept connections on port {self.port}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, settings=None, users=None, extra=""):
        """Rewrite the config and send SIGHUP (does not wait for the reload)."""
        self.write_config(settings, users, extra)
        self.signal(signal.SIGHUP)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pgwarden still running {timeout}s later")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self in _RUNNING:
            _RUNNING.remove(self)

    # -- clients ---------------------------------------------------------

    def conninfo(self, user="alice", dbname="acme", password=None, **extra):
        if password is None:
            password = self.passwords.get(user, "")
        params = dict(host=HOST, port=self.port, user=user, dbname=dbname,
                      password=password, connect_timeout=10)
        params.update(extra)
        return " ".join(f"{k}='{v}'" for k, v in params.items())

    def connect(self, user="alice", dbname="acme", password=None, autocommit=True, **extra):
        """A psycopg connection through pgwarden (autocommit unless told)."""
        return psycopg.connect(self.conninfo(user, dbname, password, **extra),
                               autocommit=autocommit)

    def login_error(self, user, dbname, password=None, ssl_request=False):
        """Log in with the raw protocol; the ServerError pgwarden sent, or None."""
        if password is None:
            password = self.passwords.get(user, "")
        return pgwire.login_error(HOST, self.port, user, dbname, password, ssl_request)


@pytest.fixture(scope="module")
def pgwarden(postgres, tmp_path_factory):
    """Factory: pgwarden(settings={...}, users={...}, secret_format=..., extra=...,
    start=True) -> a running Pgwarden. All are stopped when the module ends."""
    instances = []

    def make(settings=None, users=None, secret_format="plain", extra="", start=True,
             passwords=None):
        directory = tmp_path_factory.mktemp("pgwarden")
        gw = Pgwarden(directory, postgres, settings, users, secret_format, extra, passwords)
        instances.append(gw)
        return gw.start() if start else gw

    yield make
    for gw in instances:
        gw.stop()


def query_one(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


# --------------------------------------------------------------------------
# Redis (the result cache's shared store, mode = redis)
# --------------------------------------------------------------------------

REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")


class RedisServer:
    """A redis-server of the test session's own, on a free port in a temp dir.

    `url` is what [cache] redis takes; `command(...)` speaks RESP to it (a few
    lines of protocol, so the tests need no client library); `kill()` and
    `start()` let a test take Redis away mid-run and bring it back on the same
    port; `stop()` is for the end of the session.
    """

    def __init__(self, root):
        self.root = Path(root)
        self.port = free_port()
        self.log = self.root / "redis.log"
        self.proc = None

    @property
    def url(self):
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout=15):
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--dir", str(self.root),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def answers():
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited during start-up:\n"
                                     + self.log.read_text(errors="replace")[-2000:])
            try:
                return self.command("PING") == "PONG"
            except OSError:
                return False

        wait_until(answers, timeout, f"redis-server to answer on port {self.port}")
        return self

    def kill(self):
        """SIGKILL: Redis gone with its data, as a crash would leave it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def command(self, *args, timeout=5):
        """One command, its reply as Python values (errors raise)."""
        with socket.create_connection((HOST, self.port), timeout=timeout) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _resp_read(s.makefile("rb"))

    def flush(self):
        self.command("FLUSHALL")


def _resp_read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise AssertionError("redis: " + rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise AssertionError(f"redis: unexpected reply {line!r}")


@pytest.fixture(scope="session")
def redis():
    """A real redis-server for the session (started on first use)."""
    root = tempfile.mkdtemp(prefix="pgw-redis-")
    server = RedisServer(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
