"""Virtualized catalogs (issue 3): psql's describe commands and a BI tool's
metadata sync, through pgwarden as tenant A, show the tables and columns A
may read and nothing of the hidden ones (audit_secrets, "Vault", tables
outside the policy, the hidden column customers.internal_rating).

The SQLAlchemy and pgjdbc statements below are the catalog queries those
libraries send (PostgreSQL dialect reflection; DatabaseMetaData), written
out so the test needs neither library; pgjdbc also runs for real when java
and its jar are installed.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import isolation_data as data
from conftest import DEFAULT_TIMEOUT, HOST

PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
PGJDBC = os.environ.get("PGJDBC_JAR", "/usr/share/java/postgresql.jar")
VISIBLE_TABLES = ("customers", "orders", "products")
VISIBLE_COLUMNS = ("tenant_id", "email", "ssn", "loyalty_code", "credit_limit", "placed_on")
# Everything tenant A must not learn exists (the schema `hush` may show: it
# holds only denied tables, which must not).
FORBIDDEN = data.HIDDEN_NAMES + (data.MARKER, str(data.SECRET_NUMBER))


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


def assert_nothing_hidden(text):
    found = [name for name in FORBIDDEN if name in text]
    assert not found, f"{found} visible in:\n{text[:3000]}"


# --------------------------------------------------------------------------
# psql
# --------------------------------------------------------------------------


def psql(gw, command):
    env = dict(os.environ, PGPASSWORD=data_password(gw), PGCONNECT_TIMEOUT="10")
    proc = subprocess.run(
        [PSQL, "-X", "-h", HOST, "-p", str(gw.port), "-U", "alice", "-d", "isoa",
         "-v", "ON_ERROR_STOP=1", "-c", command],
        # Most of the test's own time limit (slower builds raise both).
        capture_output=True, text=True, env=env, timeout=max(30, DEFAULT_TIMEOUT - 10))
    return proc


def data_password(gw):
    return gw.passwords["alice"]


@pytest.mark.parametrize("command, must_show", [
    (r"\d", VISIBLE_TABLES),
    (r"\dt", VISIBLE_TABLES),
    (r"\dt public.*", VISIBLE_TABLES),
    (r"\d customers", ("email", "ssn", "credit_limit", "customers_pkey")),
    (r"\d+ customers", ("email", "ssn", "credit_limit", "customers_pkey")),
    (r"\d orders", ("customer_id", "orders_pkey", "orders_customer_idx")),
    (r"\d+ orders", ("customer_id", "orders_pkey", "orders_customer_idx")),
    (r"\di", ("orders_pkey", "orders_customer_idx")),
    (r"\dv", ()),
    (r"\ds", ()),
    (r"\dn", ("public",)),
    (r"\dp", VISIBLE_TABLES),
    (r"\dd", ()),  # reads pgc.tableoid: the virtual pg_constraint carries it
    # every relation described, query after query: near its limit under ASan
    # beside another worker, so it runs alone (conftest.py, "Parallel runs")
    pytest.param(r"\d *", VISIBLE_TABLES, marks=pytest.mark.serial),
])
def test_psql_describe_shows_no_hidden_object(gw, command, must_show):
    proc = psql(gw, command)
    stderr = proc.stderr.replace("Did not find any relations.", "").strip()
    assert proc.returncode == 0 and not stderr, proc.stderr
    for name in must_show:
        assert name in proc.stdout, f"{name} missing from {command}:\n{proc.stdout}"
    assert_nothing_hidden(proc.stdout)


@pytest.mark.parametrize("command", [r"\d audit_secrets", r'\d "Vault"', r"\d staff_salaries",
                                     r"\d secret_view", r"\d hush.keyring"])
def test_psql_describe_hidden_says_not_found(gw, command):
    """As for a name that never existed: 'Did not find any relation'."""
    proc = psql(gw, command)
    missing = psql(gw, r"\d no_such_rel")
    assert "Did not find any relation" in missing.stderr
    assert proc.returncode == missing.returncode
    assert "Did not find any relation" in proc.stderr
    assert_nothing_hidden(proc.stdout)


def test_psql_dt_plus_shows_sizes_only_of_unfiltered_tables(gw):
    """A row-filtered table's size tells other tenants' volume: \\dt+ shows
    it empty (pg_table_size answers NULL), while the shared, unfiltered
    products table shows its real size."""
    proc = psql(gw, r"\dt+")
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")]
            for line in proc.stdout.splitlines() if line.count("|") >= 6}
    header = [c.strip() for c in proc.stdout.splitlines()[1].split("|")]
    size = header.index("Size")
    assert rows["products"][size].endswith("kB"), proc.stdout
    assert rows["customers"][size] == "" and rows["orders"][size] == "", proc.stdout
    assert_nothing_hidden(proc.stdout + proc.stderr)


def test_psql_df_does_not_error(gw):
    proc = psql(gw, r"\df")
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    assert data.MARKER not in proc.stdout


# --------------------------------------------------------------------------
# BI-style metadata sync
# --------------------------------------------------------------------------

INFORMATION_SCHEMA = {
    "tables": "SELECT table_schema, table_name, table_type FROM information_schema.tables "
              "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
              "ORDER BY table_schema, table_name",
    "columns": "SELECT table_schema, table_name, column_name, ordinal_position, data_type, "
               "is_nullable FROM information_schema.columns "
               "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
               "ORDER BY table_schema, table_name, ordinal_position",
    "views": "SELECT table_schema, table_name, view_definition FROM information_schema.views "
             "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    "key_column_usage": "SELECT table_name, column_name, constraint_name "
                        "FROM information_schema.key_column_usage",
    "table_constraints": "SELECT table_name, constraint_name, constraint_type "
                         "FROM information_schema.table_constraints "
                         "WHERE table_schema = 'public'",
    "column_privileges": "SELECT table_name, column_name FROM information_schema.column_privileges "
                         "WHERE table_schema = 'public'",
}

# SQLAlchemy 1.4 PGDialect: get_table_names, get_view_names, get_table_oid,
# get_columns (the latter with the OID the former returned).
SQLALCHEMY_TABLE_NAMES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %(schema)s AND c.relkind in ('r', 'p')")
SQLALCHEMY_VIEW_NAMES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %(schema)s AND c.relkind IN ('v', 'm')")
SQLALCHEMY_TABLE_OID = (
    "SELECT c.oid FROM pg_catalog.pg_class c "
    "LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE (pg_catalog.pg_table_is_visible(c.oid)) AND c.relname = %(table_name)s "
    "AND c.relkind in ('r', 'v', 'm', 'f', 'p')")
SQLALCHEMY_COLUMNS = (
    "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d "
    "WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef) AS DEFAULT, "
    "a.attnotnull, a.attrelid as table_oid, pgd.description as comment, "
    "a.attgenerated as generated, "
    "(SELECT json_build_object('always', a.attidentity = 'a', 'start', s.seqstart, "
    "'increment', s.seqincrement, 'minvalue', s.seqmin, 'maxvalue', s.seqmax, "
    "'cache', s.seqcache, 'cycle', s.seqcycle) FROM pg_catalog.pg_sequence s, "
    "pg_catalog.pg_class c WHERE s.seqrelid = c.oid AND c.relkind = 'S' "
    "AND a.attidentity != '' AND s.seqrelid = pg_catalog.pg_get_serial_sequence("
    "a.attrelid::regclass::text, a.attname)::regclass::oid) as identity_options "
    "FROM pg_catalog.pg_attribute a "
    "LEFT JOIN pg_catalog.pg_description pgd ON (pgd.objoid = a.attrelid AND pgd.objsubid = a.attnum) "
    "WHERE a.attrelid = %(table_oid)s AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum")
# SQLAlchemy 2.0 reflects all tables' columns in one statement.
SQLALCHEMY2_COLUMNS = (
    "SELECT pg_catalog.pg_class.relname AS table_name, pg_catalog.pg_attribute.attname AS name, "
    "pg_catalog.format_type(pg_catalog.pg_attribute.atttypid, pg_catalog.pg_attribute.atttypmod) "
    "AS format_type, pg_catalog.pg_attribute.attnotnull AS not_null, "
    "pg_catalog.pg_description.description AS comment, "
    "pg_catalog.pg_attribute.attgenerated AS generated "
    "FROM pg_catalog.pg_class LEFT OUTER JOIN pg_catalog.pg_attribute "
    "ON pg_catalog.pg_class.oid = pg_catalog.pg_attribute.attrelid "
    "AND pg_catalog.pg_attribute.attnum > 0 AND NOT pg_catalog.pg_attribute.attisdropped "
    "LEFT OUTER JOIN pg_catalog.pg_description "
    "ON pg_catalog.pg_description.objoid = pg_catalog.pg_attribute.attrelid "
    "AND pg_catalog.pg_description.objsubid = pg_catalog.pg_attribute.attnum "
    "JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace "
    "WHERE pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) "
    "AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) "
    "AND pg_catalog.pg_namespace.nspname != 'pg_catalog' "
    "ORDER BY pg_catalog.pg_class.relname, pg_catalog.pg_attribute.attnum")
SQLALCHEMY2_TABLE_NAMES = (
    "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class "
    "JOIN pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = pg_catalog.pg_class.relnamespace "
    "WHERE pg_catalog.pg_class.relkind = ANY (%(relkind)s) "
    "AND pg_catalog.pg_class.relpersistence != 't' "
    "AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) "
    "AND pg_catalog.pg_namespace.nspname != 'pg_catalog'")

# pgjdbc 42.x DatabaseMetaData.getTables(null, null, "%", null) and
# getColumns(null, null, "%", "%").
PGJDBC_TABLES = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, "
    " CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' "
    " WHEN true THEN CASE WHEN n.nspname = 'pg_catalog' OR n.nspname = 'information_schema' "
    " THEN CASE c.relkind WHEN 'r' THEN 'SYSTEM TABLE' WHEN 'v' THEN 'SYSTEM VIEW' "
    " WHEN 'i' THEN 'SYSTEM INDEX' ELSE NULL END "
    " WHEN n.nspname = 'pg_toast' THEN CASE c.relkind WHEN 'r' THEN 'SYSTEM TOAST TABLE' "
    " WHEN 'i' THEN 'SYSTEM TOAST INDEX' ELSE NULL END "
    " ELSE CASE c.relkind WHEN 'r' THEN 'TEMPORARY TABLE' WHEN 'p' THEN 'TEMPORARY TABLE' "
    " WHEN 'i' THEN 'TEMPORARY INDEX' WHEN 'S' THEN 'TEMPORARY SEQUENCE' "
    " WHEN 'v' THEN 'TEMPORARY VIEW' ELSE NULL END END "
    " WHEN false THEN CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' "
    " WHEN 'i' THEN 'INDEX' WHEN 'P' then 'PARTITIONED INDEX' WHEN 'S' THEN 'SEQUENCE' "
    " WHEN 'v' THEN 'VIEW' WHEN 'c' THEN 'TYPE' WHEN 'f' THEN 'FOREIGN TABLE' "
    " WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END ELSE NULL END AS TABLE_TYPE, "
    " d.description AS REMARKS, '' as TYPE_CAT, '' as TYPE_SCHEM, '' as TYPE_NAME, "
    " '' AS SELF_REFERENCING_COL_NAME, '' AS REF_GENERATION "
    " FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c "
    " LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 "
    " and d.classoid = 'pg_class'::regclass) "
    " WHERE c.relnamespace = n.oid AND c.relname LIKE '%' "
    " ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME")
PGJDBC_COLUMNS = (
    "SELECT * FROM (SELECT n.nspname,c.relname,a.attname,a.atttypid,"
    "a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,"
    "t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, "
    "nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,"
    "pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,"
    "t.typtype FROM pg_catalog.pg_namespace n "
    "JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid) "
    "JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid) "
    "JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) "
    "LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum) "
    "LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) "
    "LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class') "
    "LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog') "
    "WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped "
    "AND c.relname LIKE '%' ) c WHERE true AND attname LIKE '%' "
    "ORDER BY nspname,c.relname,attnum")
PGJDBC_PRIMARY_KEYS = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, ct.relname AS TABLE_NAME, "
    "a.attname AS COLUMN_NAME, (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, "
    "ci.relname AS PK_NAME, information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM "
    "FROM pg_catalog.pg_class ct JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid) "
    "JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid) "
    "JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid) "
    "JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) "
    "WHERE true AND n.nspname = E'public' AND ct.relname = E'customers' AND i.indisprimary")
# pgjdbc wraps that query and keeps one row per key column.
PGJDBC_PRIMARY_KEYS = (
    "SELECT result.TABLE_CAT, result.TABLE_SCHEM, result.TABLE_NAME, result.COLUMN_NAME, "
    "result.KEY_SEQ, result.PK_NAME FROM (" + PGJDBC_PRIMARY_KEYS + ") result "
    "WHERE result.A_ATTNUM = (result.KEYS).x ORDER BY result.table_name, result.pk_name, "
    "result.key_seq")


def fetch(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
    return names, rows


def text_of(names, rows):
    return "\n".join(names + [" ".join("" if v is None else str(v) for v in r) for r in rows])


@pytest.mark.parametrize("view", sorted(INFORMATION_SCHEMA))
def test_information_schema_shows_no_hidden_object(gw, view):
    with gw.connect("alice", "isoa") as conn:
        names, rows = fetch(conn, INFORMATION_SCHEMA[view])
    assert_nothing_hidden(text_of(names, rows))
    if view == "tables":
        assert {(r[0], r[1]) for r in rows} == {("public", t) for t in VISIBLE_TABLES}
    if view == "columns":
        columns = [r[2] for r in rows if r[1] == "customers"]
        assert columns == ["id", "tenant_id", "name", "email", "phone", "ssn", "loyalty_code",
                           "city", "signup_date", "credit_limit"]
        assert [r[3] for r in rows if r[1] == "customers"] == list(range(1, 11))


def test_sqlalchemy_14_reflection(gw):
    with gw.connect("alice", "isoa") as conn:
        _, tables = fetch(conn, SQLALCHEMY_TABLE_NAMES, {"schema": "public"})
        _, views = fetch(conn, SQLALCHEMY_VIEW_NAMES, {"schema": "public"})
        assert sorted(r[0] for r in tables) == sorted(VISIBLE_TABLES)
        assert views == []
        _, oid = fetch(conn, SQLALCHEMY_TABLE_OID, {"table_name": "customers"})
        assert len(oid) == 1
        names, columns = fetch(conn, SQLALCHEMY_COLUMNS, {"table_oid": oid[0][0]})
        assert [r[0] for r in columns] == ["id", "tenant_id", "name", "email", "phone", "ssn",
                                           "loyalty_code", "city", "signup_date", "credit_limit"]
        assert_nothing_hidden(text_of(names, columns))
        for hidden in ("audit_secrets", "Vault", "staff_salaries"):
            assert fetch(conn, SQLALCHEMY_TABLE_OID, {"table_name": hidden})[1] == []


def test_sqlalchemy_20_reflection(gw):
    with gw.connect("alice", "isoa") as conn:
        _, tables = fetch(conn, SQLALCHEMY2_TABLE_NAMES, {"relkind": ["r", "p"]})
        names, columns = fetch(conn, SQLALCHEMY2_COLUMNS)
    assert sorted(r[0] for r in tables) == sorted(VISIBLE_TABLES)
    assert {r[0] for r in columns} == set(VISIBLE_TABLES)
    assert_nothing_hidden(text_of(names, columns))


def test_pgjdbc_metadata_queries(gw):
    with gw.connect("alice", "isoa") as conn:
        names, tables = fetch(conn, PGJDBC_TABLES)
        user_tables = {(r[1], r[2]) for r in tables if r[3] == "TABLE"}
        assert user_tables == {("public", t) for t in VISIBLE_TABLES}
        assert_nothing_hidden(text_of(names, tables))
        names, columns = fetch(conn, PGJDBC_COLUMNS)
        assert_nothing_hidden(text_of(names, columns))
        visible = {r[2] for r in columns if r[0] == "public"}
        assert set(VISIBLE_COLUMNS) <= visible
        assert "internal_rating" not in {r[2] for r in columns}


def test_pgjdbc_primary_keys_query(gw):
    with gw.connect("alice", "isoa") as conn:
        _, pk = fetch(conn, PGJDBC_PRIMARY_KEYS)
    assert [r[3] for r in pk] == ["id"]


def run_pgjdbc(gw, *mode):
    java = shutil.which("java")
    if not java or not Path(PGJDBC).exists():
        pytest.skip("java or pgjdbc missing (default-jdk-headless, libpostgresql-jdbc-java)")
    source = Path(__file__).with_name("sql") / "JdbcMetadata.java"
    proc = subprocess.run(
        [java, "-cp", PGJDBC, str(source), HOST, str(gw.port), "isoa", "alice",
         gw.passwords["alice"], *mode], capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.timeout(120)
def test_real_pgjdbc_keys_and_indexes(gw):
    out = run_pgjdbc(gw, "keys")
    assert_nothing_hidden(out)
    assert "PK customers.id" in out
    assert "INDEX orders.orders_customer_idx" in out


@pytest.mark.timeout(120)
def test_real_pgjdbc_database_metadata(gw):
    out = run_pgjdbc(gw)
    assert_nothing_hidden(out)
    tables = set(re.findall(r"^TABLE public\.(\w+) TABLE$", out, re.M))
    assert tables == set(VISIBLE_TABLES)
    columns = re.findall(r"^COLUMN public\.customers\.(\w+) ", out, re.M)
    assert columns == ["id", "tenant_id", "name", "email", "phone", "ssn", "loyalty_code",
                       "city", "signup_date", "credit_limit"]


# --------------------------------------------------------------------------
# Sessions and system columns
# --------------------------------------------------------------------------


def test_activity_shows_only_the_own_session_without_its_query(gw, postgres):
    """pgAdmin's dashboard and DBeaver's session manager read pg_stat_activity:
    while tenant B is connected, tenant A sees one session, its own, with no
    query text (the rewrite would spell out A's policy) and no transaction
    ids (they count every tenant's writes)."""
    with gw.connect("bob", "isob") as other, gw.connect("alice", "isoa") as conn:
        other.execute("SELECT 1")
        _, rows = fetch(conn, "SELECT pid = pg_backend_pid(), datname, query, backend_xmin, "
                              "pg_blocking_pids(pid) FROM pg_stat_activity")
        assert rows == [(True, "isoa", None, None, [])]
        with postgres.connect(data.SHARED_DB) as direct:
            _, n = fetch(direct, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                 "AND pid <> pg_backend_pid()", (data.SHARED_DB,))
        assert n[0][0] >= 2, "both tenants' backend sessions are there to be hidden"
        _, locks = fetch(conn, "SELECT DISTINCT pid = pg_backend_pid() FROM pg_locks")
        assert locks == [(True,)]


def test_star_beside_a_system_column_shows_the_catalogs_own_columns(gw, postgres):
    """pgAdmin's trigger properties read "t.xmin, t.*": the view that carries
    xmin must not add it to the star."""
    sql = "SELECT t.xmin, t.* FROM pg_trigger t WHERE false"
    with gw.connect("alice", "isoa") as conn:
        names, _ = fetch(conn, sql)
    with postgres.connect(data.SHARED_DB) as direct:
        want, _ = fetch(direct, sql)
    assert names == want
