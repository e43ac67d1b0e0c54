"""psqlODBC's catalog functions through pyodbc, as Tableau and other ODBC
tools call them on connect and on every schema browse (SQLTables with its
special enumerations, SQLColumns, SQLPrimaryKeys, SQLForeignKeys both ways,
SQLStatistics, SQLSpecialColumns for row ids and row versions, SQLProcedures,
SQLProcedureColumns, SQLGetTypeInfo), plus the column descriptions of a
query (SQLDescribeCol). The SQL is the driver's own (psqlODBC info.c), not a
transcription. Run by tests/integration/test_tools_api.py against pgwarden
and against the single-tenant reference, which compares the outputs.

Usage: odbc_api_sweep.py HOST PORT DATABASE USER PASSWORD [declare_fetch [conn_settings [options]]]
Prints one JSON object {call: {"cols": [...], "rows": [...]} or
{"error": [sqlstate, message]}}; every call runs even after one fails (the
connection must stay usable).
"""

import json
import sys

import pyodbc

host, port, database, user, password = sys.argv[1:6]
declare_fetch = len(sys.argv) > 6 and sys.argv[6] == "1"
conn_settings = sys.argv[7] if len(sys.argv) > 7 else ""
# The options that change the driver's catalog SQL: Parse=1 parses each
# SELECT and looks its columns up (SQLDescribeCol's nullability and base
# table), ShowOidColumn/FakeOidIndex add the oid pseudo-column and index,
# RowVersioning adds xmin to SQLSpecialColumns (and SQLColumns), and
# ShowSystemTables lists pg_catalog's tables as TABLEs.
options = sys.argv[8] if len(sys.argv) > 8 else ""
conn = pyodbc.connect(
    "Driver={PostgreSQL Unicode};"
    f"Server={host};Port={port};Database={database};Uid={user};Pwd={password};"
    f"UseDeclareFetch={1 if declare_fetch else 0};Fetch=3;SSLmode=disable;"
    f"ConnSettings={conn_settings};{options}",
    autocommit=True, timeout=10)
cur = conn.cursor()
out = {}


def text(v):
    return None if v is None else str(v)


def call(name, fn):
    try:
        res = fn()
        cols = [d[0] for d in res.description] if res.description else []
        rows = [[text(v) for v in r] for r in res.fetchall()]
        out[name] = {"cols": cols, "rows": rows}
    except pyodbc.Error as e:
        out[name] = {"error": [e.args[0], str(e.args[-1])[:300]]}


TABLES = ("customers", "orders", "products", "big_facts")

call("tables(catalogs)", lambda: cur.tables(catalog="%", schema="", table=""))
call("tables(schemas)", lambda: cur.tables(catalog="", schema="%", table=""))
call("tables(types)", lambda: cur.tables(catalog="", schema="", table="", tableType="%"))
call("tables(all)", lambda: cur.tables())
call("tables(public)", lambda: cur.tables(schema="public"))
call("tables(table,view)", lambda: cur.tables(schema="public", tableType="TABLE,VIEW"))
call("tables(system)", lambda: cur.tables(schema="pg_catalog", tableType="SYSTEM TABLE"))
call("tables(hidden)", lambda: cur.tables(table="internal_notes"))
call("tables(vault)", lambda: cur.tables(schema="vault"))
call("columns(all)", lambda: cur.columns(schema="public"))
call("columns(view)", lambda: cur.columns(table="customer_regions"))
call("columns(hidden)", lambda: cur.columns(table="internal_notes"))
call("columns(vault)", lambda: cur.columns(schema="vault"))
for t in TABLES:
    call(f"columns({t})", lambda: cur.columns(table=t, schema="public"))
    call(f"primaryKeys({t})", lambda: cur.primaryKeys(t, schema="public"))
    call(f"foreignKeys(imported {t})", lambda: cur.foreignKeys(foreignTable=t,
                                                                 foreignSchema="public"))
    call(f"foreignKeys(exported {t})", lambda: cur.foreignKeys(table=t, schema="public"))
    call(f"statistics({t})", lambda: cur.statistics(t, schema="public"))
    call(f"statistics({t},unique)", lambda: cur.statistics(t, schema="public", unique=True,
                                                           quick=False))
    call(f"rowIdColumns({t})", lambda: cur.rowIdColumns(t, schema="public"))
    call(f"rowVerColumns({t})", lambda: cur.rowVerColumns(t, schema="public"))
call("foreignKeys(both)", lambda: cur.foreignKeys(table="customers", schema="public",
                                                  foreignTable="orders",
                                                  foreignSchema="public"))
call("primaryKeys(hidden)", lambda: cur.primaryKeys("internal_notes", schema="public"))
call("foreignKeys(hidden)", lambda: cur.foreignKeys(foreignTable="internal_notes",
                                                    foreignSchema="public"))
call("statistics(hidden)", lambda: cur.statistics("internal_notes", schema="public"))
call("rowIdColumns(hidden)", lambda: cur.rowIdColumns("internal_notes", schema="public"))
call("procedures(public)", lambda: cur.procedures(schema="public"))
call("procedures(lower)", lambda: cur.procedures(procedure="lower", schema="pg_catalog"))
call("procedures(hidden)", lambda: cur.procedures(procedure="note_checker"))
call("procedureColumns(public)", lambda: cur.procedureColumns(schema="public"))
call("procedureColumns(lower)", lambda: cur.procedureColumns(procedure="lower",
                                                             schema="pg_catalog"))
call("procedureColumns(setof)", lambda: cur.procedureColumns(procedure="pg_get_keywords",
                                                             schema="pg_catalog"))
call("getTypeInfo", lambda: cur.getTypeInfo())
call("getTypeInfo(varchar)", lambda: cur.getTypeInfo(pyodbc.SQL_VARCHAR))
call("getTypeInfo(timestamp)", lambda: cur.getTypeInfo(pyodbc.SQL_TYPE_TIMESTAMP))
call("query", lambda: cur.execute(
    "SELECT c.id, c.name, c.ssn, o.total, o.mood, o.created_at FROM customers c "
    "JOIN orders o ON o.customer_id = c.id WHERE c.id = ? ORDER BY o.id", 2))
out["describe"] = {"cols": [[d[0], d[1].__name__, d[4], d[5], d[6]]
                            for d in cur.description], "rows": []}
call("selectHidden", lambda: cur.execute("SELECT * FROM internal_notes"))
call("afterError", lambda: cur.execute("SELECT 1 AS one"))
info = {}
for name in ("SQL_DBMS_NAME", "SQL_DBMS_VER", "SQL_DATABASE_NAME", "SQL_USER_NAME",
             "SQL_SERVER_NAME", "SQL_IDENTIFIER_QUOTE_CHAR", "SQL_MAX_COLUMN_NAME_LEN"):
    try:
        info[name] = text(conn.getinfo(getattr(pyodbc, name)))
    except pyodbc.Error as e:
        info[name] = "error " + e.args[0]
out["getinfo"] = {"cols": list(info), "rows": [list(info.values())]}
print(json.dumps(out))
