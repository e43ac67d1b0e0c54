"""Real drivers in transaction pooling mode: 200 pgjdbc connections
(prepareThreshold=1: named server-side statements from the first use,
binary transfer) and 200 node-postgres clients (named prepared statements)
on pool_size = 5, every answer each client's own, and never more backend
sessions than the pool allows."""

import json
import os
import shutil
import threading

import pytest

from conftest import HOST, REPO, wait_until

CLIENTS = REPO / "tests" / "clients"
PGJDBC = os.environ.get("PGJDBC_JAR", "/usr/share/java/postgresql.jar")


def backend_sessions(postgres, dbname):
    with postgres.connect() as su:
        return su.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = 'reader' "
                          "AND datname = %s AND application_name <> 'pgwarden catalog'", (dbname,)).fetchone()[0]


@pytest.fixture(scope="module")
def gw(pgwarden):
    return pgwarden(settings={"pool_mode": "transaction", "pool_size": "5",
                              "pool_timeout": "60s"})


class Peak:
    """The most backend sessions of a tenant seen while a block runs."""

    def __init__(self, postgres, dbname):
        self.postgres, self.dbname, self.value = postgres, dbname, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch)

    def watch(self):
        while not self.stop.is_set():
            self.value = max(self.value, backend_sessions(self.postgres, self.dbname))
            self.stop.wait(0.1)

    def __enter__(self):
        # Sessions of gateways of earlier tests may still be going away.
        wait_until(lambda: backend_sessions(self.postgres, self.dbname) == 0, 30,
                   "earlier backend sessions to be gone")
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def run(argv, timeout, **kw):
    import subprocess
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, **kw)
    assert result.returncode == 0, f"{argv[0]} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.timeout(240)
def test_two_hundred_pgjdbc_connections_on_five_sessions(gw, postgres, tmp_path):
    if not shutil.which("javac"):
        pytest.skip("javac missing: apt-get install default-jdk-headless")
    if not os.path.exists(PGJDBC):
        pytest.skip("pgjdbc missing: apt-get install libpostgresql-jdbc-java")
    run(["javac", "-encoding", "UTF-8", "-d", str(tmp_path), "-cp", PGJDBC,
         str(CLIENTS / "JdbcTxn.java")], timeout=120)
    with Peak(postgres, "acme") as peak:
        out = run(["java", "-cp", f"{tmp_path}:{PGJDBC}", "JdbcTxn", HOST, str(gw.port), "acme",
                   "alice", gw.passwords["alice"], "200", "6"], timeout=220)
    lines = out.splitlines()
    assert lines == ["OK 200"], "\n".join(lines[:20])
    assert 1 <= peak.value <= 5, peak.value


@pytest.mark.timeout(180)
def test_two_hundred_node_postgres_clients_on_five_sessions(gw, postgres):
    if not shutil.which("node"):
        pytest.skip("node missing: apt-get install nodejs npm")
    if not (CLIENTS / "node_modules" / "pg").is_dir():
        pytest.skip("node-postgres missing: (cd tests/clients && npm ci)")
    with Peak(postgres, "globex") as peak:
        out = run(["node", str(CLIENTS / "node_txn.js"), HOST, str(gw.port), "globex", "bob",
                   gw.passwords["bob"], "200", "6"], timeout=170, cwd=CLIENTS)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["bad"] == [] and result["ok"] == 200, result["bad"][:10]
    assert 1 <= peak.value <= 5, peak.value
