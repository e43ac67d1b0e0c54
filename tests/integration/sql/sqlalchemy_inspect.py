"""SQLAlchemy's Inspector through pgwarden, every method Superset, pandas
and Alembic call (Debian 12's SQLAlchemy 1.4 with the psycopg2 dialect, so
the SQL is dialects/postgresql/base.py's own): schema, table, view,
sequence and foreign-table names, columns, keys, indexes, constraints,
comments, enums, view definitions, has_table/has_sequence, per table and
per schema. Run by tests/integration/test_tools_api.py against pgwarden and
against the single-tenant reference, which compares the outputs.

Usage: sqlalchemy_inspect.py HOST PORT DATABASE USER PASSWORD [options]
Prints one JSON object {call: value or {"error": [sqlstate, message]}};
every call runs even after one fails.
"""

import json
import sys

import sqlalchemy as sa

host, port, database, user, password = sys.argv[1:6]
options = sys.argv[6] if len(sys.argv) > 6 else ""
engine = sa.create_engine(
    f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{database}?sslmode=disable",
    connect_args={"options": options} if options else {})
insp = sa.inspect(engine)
out = {}


def call(name, fn):
    try:
        out[name] = fn()
    except sa.exc.DBAPIError as e:
        out[name] = {"error": [getattr(e.orig, "pgcode", None), str(e.orig).splitlines()[0]]}
        insp.info_cache.clear()
    except sa.exc.NoSuchTableError as e:
        out[name] = {"error": ["NoSuchTable", str(e)]}


call("get_schema_names", insp.get_schema_names)
call("default_schema_name", lambda: insp.default_schema_name)
for schema in (None, "public", "vault"):
    s = schema or "default"
    call(f"get_table_names({s})", lambda: sorted(insp.get_table_names(schema)))
    call(f"get_view_names({s})", lambda: sorted(insp.get_view_names(schema)))
    call(f"get_sequence_names({s})", lambda: sorted(insp.get_sequence_names(schema)))
    call(f"get_foreign_table_names({s})", lambda: sorted(insp.get_foreign_table_names(schema)))
    call(f"get_enums({s})", lambda: insp.get_enums(schema))
call("get_enums(*)", lambda: insp.get_enums("*"))
for t in ("customers", "orders", "products", "big_facts", "customer_regions"):
    call(f"get_columns({t})", lambda: [
        {k: str(v) for k, v in c.items()} for c in insp.get_columns(t, "public")])
    call(f"get_pk_constraint({t})", lambda: insp.get_pk_constraint(t, "public"))
    call(f"get_foreign_keys({t})", lambda: insp.get_foreign_keys(t, "public"))
    call(f"get_indexes({t})", lambda: insp.get_indexes(t, "public"))
    call(f"get_unique_constraints({t})", lambda: insp.get_unique_constraints(t, "public"))
    call(f"get_check_constraints({t})", lambda: insp.get_check_constraints(t, "public"))
    call(f"get_table_comment({t})", lambda: insp.get_table_comment(t, "public"))
    call(f"get_table_options({t})", lambda: insp.get_table_options(t, "public"))
    call(f"get_table_oid({t})", lambda: insp.get_table_oid(t, "public") > 0)
call("get_view_definition(customer_regions)",
     lambda: insp.get_view_definition("customer_regions", "public"))
call("get_sorted_table_and_fkc_names",
     lambda: sorted([[t or "", sorted(map(list, f))]
                     for t, f in insp.get_sorted_table_and_fkc_names()]))
for t in ("customers", "internal_notes", "notes_view", "zz_missing"):
    call(f"has_table({t})", lambda: insp.has_table(t))
    call(f"has_table(vault.{t})", lambda: insp.has_table(t, "vault"))
for s in ("orders_id_seq", "internal_notes_id_seq", "zz_missing_seq"):
    call(f"has_sequence({s})", lambda: engine.dialect.has_sequence(engine.connect(), s))
for t in ("internal_notes", "notes_view"):
    call(f"get_columns({t})", lambda: insp.get_columns(t, "public"))
    call(f"get_view_definition({t})", lambda: insp.get_view_definition(t, "public"))
call("get_columns(vault.secret_keys)", lambda: insp.get_columns("secret_keys", "vault"))
md = sa.MetaData()
call("reflect", lambda: md.reflect(bind=engine, views=True) or sorted(md.tables))
with engine.connect() as conn:
    call("server_version_info", lambda: list(engine.dialect.server_version_info[:1]))
print(json.dumps(out, default=str, sort_keys=True))
