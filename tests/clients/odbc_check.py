"""psqlODBC through pgwarden, as Tableau and other ODBC BI tools use it:
UseDeclareFetch=1 makes the driver read every result through a cursor
(declare "SQL_CUR0x..." cursor with hold for ...; fetch N in "SQL_CUR0x...";
close), with quoted mixed-case cursor names. Also the driver's own catalog
functions (SQLTables, SQLColumns, SQLPrimaryKeys, SQLStatistics,
SQLForeignKeys, SQLGetTypeInfo), whose SQL is psqlODBC's (info.c).

Usage: odbc_check.py HOST PORT DATABASE USER PASSWORD
Prints one JSON object; exits non-zero on any driver error.
"""

import json
import sys

import pyodbc

host, port, database, user, password = sys.argv[1:6]
conn = pyodbc.connect(
    "Driver={PostgreSQL Unicode};"
    f"Server={host};Port={port};Database={database};Uid={user};Pwd={password};"
    "UseDeclareFetch=1;Fetch=2;SSLmode=disable;ConnSettings=;",
    autocommit=True, timeout=10)
cur = conn.cursor()
out = {}
# More rows than Fetch: several "fetch 2 in" round trips on one cursor.
cur.execute("SELECT id, name, ssn, region FROM public.customers ORDER BY id")
out["customers"] = [[r[0], r[1], r[2], r[3]] for r in cur.fetchall()]
cur.execute("SELECT status, SUM(total) FROM public.orders GROUP BY 1 ORDER BY 1")
out["totals"] = [[r[0], str(r[1])] for r in cur.fetchall()]
cur.execute("SELECT * FROM public.orders WHERE customer_id = ? ORDER BY id", 2)
out["orders_of_2"] = len(cur.fetchall())
# Within an explicit transaction too (the cursor then lives in it).
conn.autocommit = False
cur.execute("SELECT count(*) FROM big_facts")
out["facts"] = cur.fetchone()[0]
conn.commit()
conn.autocommit = True
out["tables"] = sorted(r.table_name for r in cur.tables(schema="public", tableType="TABLE"))
out["views"] = sorted(r.table_name for r in cur.tables(schema="public", tableType="VIEW"))
out["columns"] = [[r.column_name, r.type_name] for r in cur.columns(table="customers",
                                                                        schema="public")]
out["pk"] = [r.column_name for r in cur.primaryKeys("customers", schema="public")]
out["indexes"] = sorted({r.index_name for r in cur.statistics("orders", schema="public")
                         if r.index_name})
out["fks"] = sorted(r.fkcolumn_name for r in cur.foreignKeys(foreignTable="orders",
                                                              foreignSchema="public"))
out["types"] = len(cur.getTypeInfo().fetchall())
hidden = list(cur.tables(table="internal_notes"))
out["hidden_tables"] = len(hidden)
try:
    cur.execute("SELECT * FROM internal_notes")
    out["hidden_select"] = "allowed"
except pyodbc.Error as e:
    out["hidden_select"] = e.args[0]
print(json.dumps(out))
