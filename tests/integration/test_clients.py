"""Real clients through pgwarden: psql, pgjdbc, node-postgres.

Each runs as a subprocess against one gateway; the programs live in
tests/clients. A missing toolchain (no javac, no node_modules) skips its test
with the command that fixes it, so a developer knows what to install.
"""

import json
import os
import shutil
import subprocess

import pytest

from conftest import HOST, REPO

CLIENTS = REPO / "tests" / "clients"
PGJDBC = os.environ.get("PGJDBC_JAR", "/usr/share/java/postgresql.jar")


# Tables named explicitly, as a real deployment would: catalog queries
# (psql's \d, pgjdbc's DatabaseMetaData) must list them.
TABLES = "".join(f"\n[table.public.{t}]\n" for t in
                 ("tenant_marker", "customers", "orders", "products", "kinds"))


@pytest.fixture(scope="module")
def gw(pgwarden):
    return pgwarden(settings={"default_access": "deny"}, extra=TABLES)


def run(argv, timeout=60, **kw):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, **kw)
    assert result.returncode == 0, (
        f"{argv[0]} exited {result.returncode}\nstdout:\n{result.stdout}\n"
        f"stderr:\n{result.stderr}")
    return result.stdout


def sections(text):
    """Split psql output at its '== name' markers."""
    parts, name = {}, None
    for line in text.splitlines():
        if line.startswith("== "):
            name = line[3:].strip()
            parts[name] = []
        elif name:
            parts[name].append(line)
    return {k: "\n".join(v) for k, v in parts.items()}


def test_psql_describe_and_select(gw):
    out = run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d",
               gw.conninfo("alice", "acme", sslmode="disable"),
               "-f", str(CLIENTS / "describe.psql")])
    parts = sections(out)
    for table in ("customers", "orders", "products", "tenant_marker"):
        assert f" {table} " in parts["tables"], parts["tables"]
    for column in ("tenant_id", "email", "ssn"):
        assert column in parts["customers"], parts["customers"]
    assert "customers_pkey" in parts["customers"]
    assert "Ada Acme" in parts["rows"] and "(3 rows)" in parts["rows"]
    assert "Globex" not in out


def test_psql_lists_tables_under_default_access_allow(pgwarden):
    gw = pgwarden(settings={"default_access": "allow"})  # no [table.*] sections at all
    out = run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d",
               gw.conninfo("bob", "globex", sslmode="disable"), "-c", "\\dt"])
    for table in ("customers", "internal_notes", "orders", "products"):
        assert f" {table} " in out, out


def test_psql_reports_errors_with_sqlstate(gw):
    result = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", gw.conninfo("bob", "globex", sslmode="disable"),
         "-c", "\\set VERBOSITY verbose", "-c", "SELECT 1/0"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "22012" in result.stderr and "division by zero" in result.stderr


@pytest.fixture(scope="module")
def jdbc_classes(tmp_path_factory):
    if not shutil.which("javac"):
        pytest.skip("javac missing: apt-get install default-jdk-headless")
    if not os.path.exists(PGJDBC):
        pytest.skip("pgjdbc missing: apt-get install libpostgresql-jdbc-java")
    out = tmp_path_factory.mktemp("jdbc")
    run(["javac", "-encoding", "UTF-8", "-d", str(out), "-cp", PGJDBC, str(CLIENTS / "JdbcCheck.java")], timeout=120)
    return out


@pytest.mark.timeout(120)
def test_pgjdbc_prepared_binary_and_metadata(gw, jdbc_classes):
    out = run(["java", "-Dfile.encoding=UTF-8", "-Dsun.stdout.encoding=UTF-8", "-cp", f"{jdbc_classes}:{PGJDBC}", "JdbcCheck", HOST, str(gw.port),
               "acme", "alice", gw.passwords["alice"]], timeout=90)
    lines = out.splitlines()
    assert lines[-1] == "DONE"
    rows = [line for line in lines if line.startswith("ROW ")]
    assert rows == [
        f"ROW {r} {name} {total} 2024-01-15T10:00:00Z"
        for r in range(3)
        for name, total in (("Ada Acme", "100.00"), ("Abe Acme", "200.00"),
                            ("Amy Acme", "300.00"))
    ]
    assert "PARAMS héllo! 9000000000 3:255" in lines
    assert "ERROR 22012" in lines
    assert "TENANT acme" in lines
    assert "PRODUCT PostgreSQL" in lines
    tables = {line.split()[1] for line in lines if line.startswith("TABLE ")}
    assert {"customers", "orders", "products", "tenant_marker"} <= tables
    columns = [line.split()[1:] for line in lines if line.startswith("COLUMN ")]
    assert columns == [["id", "int4"], ["tenant_id", "text"], ["name", "text"],
                       ["email", "text"], ["ssn", "text"]]


@pytest.fixture(scope="module")
def node_ready():
    if not shutil.which("node"):
        pytest.skip("node missing: apt-get install nodejs npm")
    if not (CLIENTS / "node_modules" / "pg").is_dir():
        pytest.skip("node-postgres missing: (cd tests/clients && npm ci)")


def test_node_postgres(gw, node_ready):
    out = run(["node", str(CLIENTS / "node_check.js"), HOST, str(gw.port), "globex", "bob",
               gw.passwords["bob"]], cwd=CLIENTS)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["tenant"] == "globex"
    assert result["customers"] == [{"id": 2, "name": "Gia Globex"}]
    assert result["named"] == ["Gus Globex", "Gia Globex", "Gus Globex"]
    assert result["types"] == {"n": 42, "t": "héllo", "j": {"a": [1, 2]}, "z": None}
    assert result["error"] == "22012"
    assert result["after_error"] == 2
    assert result["multi"] == [{"a": 1}, {"b": 2}]
    assert sorted(result["pooled"]) == list(range(20))
