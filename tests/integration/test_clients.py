"""Real clients through pgwarden: psql, pgjdbc, node-postgres, and the BI-tool
libraries (psqlODBC with UseDeclareFetch, SQLAlchemy 1.4 reflection, pgjdbc
DatabaseMetaData, node-postgres catalog queries) against the two-tenant
catalog fixture of catalog_data.py.

Each runs as a subprocess against one gateway; the programs live in
tests/clients. A missing toolchain (no javac, no node_modules) skips its test
with the command that fixes it, so a developer knows what to install.
"""

import json
import os
import re
import shutil
import subprocess
import sys

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


# --------------------------------------------------------------------------
# BI-tool client libraries against the two-tenant catalog fixture (issue 12)
# --------------------------------------------------------------------------

import catalog_data  # noqa: E402


@pytest.fixture(scope="module")
def catgw(postgres, pgwarden, tmp_path_factory):
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    gw = catalog_data.start_gateway(pgwarden, postgres, {"audit_log": str(audit)})
    gw.audit_path = audit
    return gw


def client_args(gw):
    return [HOST, str(gw.port), catalog_data.TENANT, "alice", gw.passwords["alice"]]


def assert_nothing_hidden(text):
    leaked = catalog_data.leaks(text) + [w for w in (catalog_data.SHARED_DB,) if w in text]
    assert not leaked, f"{leaked} visible:\n{text[:3000]}"


VISIBLE_TABLES = ["big_facts", "customers", "orders", "products"]


def test_psqlodbc_declare_fetch_and_catalog(catgw):
    """Tableau's path: psqlODBC with UseDeclareFetch=1 reads every result
    through 'declare "SQL_CUR0x..." cursor with hold' and 'fetch 2 in
    "SQL_CUR0x..."' (mixed-case quoted cursor names), and syncs with the
    driver's own catalog SQL."""
    out = run([sys.executable, str(CLIENTS / "odbc_check.py")] + client_args(catgw))
    assert_nothing_hidden(out)
    r = json.loads(out.strip().splitlines()[-1])
    assert [c[:2] for c in r["customers"]] == [[i, f"Customer {i}"] for i in range(1, 6)]
    assert all(c[2] is None for c in r["customers"]), "ssn is masked"
    assert r["orders_of_2"] == 6 and r["facts"] == catalog_data.N_ACME_FACTS
    assert r["tables"] == VISIBLE_TABLES
    assert r["views"] == ["customer_regions"]
    assert [c[0] for c in r["columns"]] == ["id", "tenant_id", "name", "email", "ssn", "region",
                                           "created_at"]
    assert r["pk"] == ["id"]
    assert "orders_customer_idx" in r["indexes"]
    assert r["fks"] == ["customer_id", "product_id"]
    assert r["types"] > 20
    assert r["hidden_tables"] == 0
    assert r["hidden_select"] == "42P01"
    audit = catgw.audit_path.read_text()
    assert re.search(r'fetch 2 in \\"SQL_CUR0x[0-9a-f]+\\"', audit), audit[-2000:]


def test_sqlalchemy_14_reflection(catgw):
    out = run([sys.executable, str(CLIENTS / "sqlalchemy_reflect.py")] + client_args(catgw),
              timeout=120)
    assert_nothing_hidden(out)
    r = json.loads(out.strip().splitlines()[-1])
    assert "public" in r["schemas"] and "vault" not in r["schemas"]
    assert r["tables"] == VISIBLE_TABLES
    assert r["views"] == ["customer_regions"]
    assert [c[0] for c in r["columns"]["customers"]][:5] == ["id", "tenant_id", "name", "email",
                                                            "ssn"]
    assert r["pk"]["orders"] == ["id"]
    assert [f[1] for f in r["fks"]["orders"]] == ["customers", "products"]
    assert "orders_customer_idx" in r["indexes"]["orders"]
    assert r["checks"]["orders"] == ["orders_status_check"]
    assert r["comments"]["customers"] == "Customers of the tenant"
    assert r["reflected"] == VISIBLE_TABLES + ["customer_regions"] or set(r["reflected"]) >= set(
        VISIBLE_TABLES)
    assert r["rows"] == [[i, None] for i in range(1, 6)]
    assert r["has_hidden"] is False


@pytest.mark.timeout(180)
def test_pgjdbc_database_metadata_calls(catgw):
    if not shutil.which("java") or not os.path.exists(PGJDBC):
        pytest.skip("java or pgjdbc missing: apt-get install default-jdk-headless "
                    "libpostgresql-jdbc-java")
    out = run(["java", "-cp", PGJDBC, str(CLIENTS / "JdbcMetaCheck.java")] + client_args(catgw),
              timeout=170)
    assert_nothing_hidden(out)
    lines = out.splitlines()
    assert lines[-1] == "DONE"
    assert "CATALOG acme" in lines
    tables = {l.split()[2].split("=")[1] for l in lines if l.startswith("TABLES ")}
    assert tables == set(VISIBLE_TABLES) | {"customer_regions"}
    assert "COUNT HIDDEN 0" in lines and "COUNT HIDDENCOLS 0" in lines
    assert [l.split()[1] for l in lines if l.startswith("COLUMNS ")] == [
        "COLUMN_NAME=" + c for c in ("id", "tenant_id", "name", "email", "ssn", "region",
                                     "created_at")]
    assert "PK COLUMN_NAME=id PK_NAME=customers_pkey" in lines
    assert any(l.startswith("IMPORTED PKTABLE_NAME=customers") for l in lines)
    assert any("INDEX_NAME=orders_customer_idx" in l for l in lines)
    assert any(l.startswith("SCHEMAS TABLE_SCHEM=public") for l in lines)
    assert not any("vault" in l for l in lines if l.startswith("SCHEMAS"))
    assert [l for l in lines if l.startswith("ROW ")] == ["ROW 1 Customer 1", "ROW 2 Customer 2"]
    # The masked ssn keeps its origin in RowDescription: pgjdbc names its
    # table and reads its nullability from the catalog (issue 12).
    rsmd = [l for l in lines if l.startswith("RSMD ")]
    assert "RSMD ssn table=customers nullable=1 auto=false" in rsmd, rsmd
    assert all(" table=customers " in l for l in rsmd), rsmd


def test_node_postgres_catalog(catgw, node_ready):
    out = run(["node", str(CLIENTS / "node_catalog.js")] + client_args(catgw), cwd=CLIENTS)
    assert_nothing_hidden(out.replace("internal_notes", ""))
    r = json.loads(out.strip().splitlines()[-1])
    assert r["database"] == "acme"
    assert r["hasCustomers"] == 1 and r["hasHidden"] == 0
    assert r["columns"][:3] == ["id", "tenant_id", "customer_id"]
    assert r["regclass"] is True
    # a hidden relation's name fails exactly as a missing one's
    assert r["hiddenRegclass"].replace("internal_notes", "X") == \
        r["missingRegclass"].replace("zz_missing_rel", "X")
    assert r["hiddenRegclass"].startswith("42P01")
    assert r["fks"] == ["orders_customer_id_fkey", "orders_product_id_fkey"]
    assert r["sizes"][0][0] == "big_facts" and r["sizes"][0][1] is None
    assert r["sizes"][1][0] == "products" and int(r["sizes"][1][1]) > 0
