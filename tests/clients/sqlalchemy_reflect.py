"""SQLAlchemy 1.4 reflection through pgwarden (what Superset, pandas and
Alembic do on connect): Inspector calls and MetaData.reflect(), with the
psycopg2 dialect, i.e. SQLAlchemy's own catalog SQL
(dialects/postgresql/base.py).

Usage: sqlalchemy_reflect.py HOST PORT DATABASE USER PASSWORD
Prints one JSON object; exits non-zero on any error.
"""

import json
import sys

import sqlalchemy as sa

host, port, database, user, password = sys.argv[1:6]
engine = sa.create_engine(
    f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{database}?sslmode=disable")
insp = sa.inspect(engine)
out = {"schemas": insp.get_schema_names(), "tables": sorted(insp.get_table_names()),
       "views": sorted(insp.get_view_names()), "columns": {}, "pk": {}, "fks": {},
       "indexes": {}, "unique": {}, "checks": {}, "comments": {}}
for t in out["tables"]:
    out["columns"][t] = [[c["name"], str(c["type"]), c["nullable"]] for c in insp.get_columns(t)]
    out["pk"][t] = insp.get_pk_constraint(t)["constrained_columns"]
    out["fks"][t] = [[f["constrained_columns"], f["referred_table"]]
                     for f in insp.get_foreign_keys(t)]
    out["indexes"][t] = sorted(i["name"] for i in insp.get_indexes(t))
    out["unique"][t] = sorted(u["name"] for u in insp.get_unique_constraints(t))
    out["checks"][t] = sorted(c["name"] for c in insp.get_check_constraints(t))
    out["comments"][t] = insp.get_table_comment(t)["text"]
md = sa.MetaData()
md.reflect(bind=engine)
out["reflected"] = sorted(md.tables)
customers = sa.Table("customers", sa.MetaData(), autoload_with=engine)
with engine.connect() as conn:
    out["rows"] = [list(r) for r in conn.execute(
        sa.select(customers.c.id, customers.c.ssn).order_by(customers.c.id))]
out["has_hidden"] = insp.has_table("internal_notes")
print(json.dumps(out, default=str))
