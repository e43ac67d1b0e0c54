"""Every catalog has a rule (policy_catalog.c): objects whose schema, function
or type the tenant cannot see are absent from their catalog, from the reg*
types, from pg_describe_object and pg_depend, and answer exactly as missing
ones; PostgreSQL's own operators, casts, operator classes and text search
objects stay visible, so tools keep working.

Tenant A is alice (acme_a) of isolation_data: the schemas trap and hush and
the schema cr_hidden made here are not in its visible set. Types are narrowed
by schema too: those of cr_hidden are absent, except that a visible column
(public.cr_uses, added to the policy here) shows the types of cr_types it
uses, and cr_types with them, while a hidden column shows nothing.
"""

import pytest

import isolation_data as data

# An operator in the visible schema public whose function is in trap (a
# visible schema, an invisible function): the row is left out, and its name
# resolves as a missing one.
OBJECTS_SQL = """
CREATE OPERATOR public.### (LEFTARG = integer, RIGHTARG = text,
                            FUNCTION = trap.eq_int_text);
CREATE SCHEMA cr_hidden;
CREATE TEXT SEARCH CONFIGURATION cr_hidden.cr_cfg (COPY = simple);
CREATE COLLATION cr_hidden.cr_coll FROM "C";
CREATE TYPE cr_hidden.cr_mood AS ENUM ('cr_sad');
CREATE DOMAIN cr_hidden.cr_posint AS integer CHECK (VALUE > 0);
CREATE TYPE cr_hidden.cr_pair AS (a integer, b text);
CREATE TYPE cr_hidden.cr_secret AS ENUM ('cr_s');
CREATE SCHEMA cr_types;
CREATE TYPE cr_types.cr_used AS ENUM ('cr_u1');
CREATE DOMAIN cr_types.cr_dom AS integer;
CREATE TYPE cr_types.cr_unused AS ENUM ('cr_x');
CREATE TABLE public.cr_uses (id integer, u cr_types.cr_used, d cr_types.cr_dom[],
                             hid cr_hidden.cr_secret);
GRANT USAGE ON SCHEMA cr_hidden, cr_types TO iso_writer;
GRANT SELECT ON public.cr_uses TO iso_writer;
"""
DROP_SQL = """
DROP OPERATOR IF EXISTS public.### (integer, text);
DROP TABLE IF EXISTS public.cr_uses;
DROP SCHEMA IF EXISTS cr_hidden CASCADE;
DROP SCHEMA IF EXISTS cr_types CASCADE;
"""
NAMES = ("###", "eq_int_text", "cr_hidden", "cr_cfg", "cr_coll", "trap", "cr_mood", "cr_posint",
         "cr_pair", "cr_secret", "cr_unused")
HIDDEN_TYPES = ("cr_hidden.cr_mood", "cr_hidden.cr_posint", "cr_hidden.cr_pair",
                "cr_hidden.cr_secret", "cr_hidden._cr_mood", "cr_types.cr_unused")
TYPES_POLICY = """
[table.public.cr_uses]
mask.hid = hide
"""


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    data.ensure_databases(postgres)
    with postgres.connect(data.SHARED_DB) as conn:  # before the gateway's schema snapshot
        conn.execute(DROP_SQL)
        conn.execute(OBJECTS_SQL)
    return pgwarden(settings=data.GATEWAY_SETTINGS, users=data.GATEWAY_USERS,
                    extra=data.gateway_extra(postgres) + TYPES_POLICY)


@pytest.fixture(scope="module")
def objects(postgres, gw):
    data.ensure_databases(postgres)
    with postgres.connect(data.SHARED_DB) as conn:
        oids = conn.execute(
            "SELECT (SELECT oid FROM pg_operator WHERE oprname = '###'), "
            "(SELECT oid FROM pg_operator WHERE oprname = '~~' AND oprnamespace = "
            "'trap'::regnamespace), 'cr_hidden.cr_cfg'::regconfig::oid, "
            "'cr_hidden.cr_coll'::regcollation::oid").fetchone()
        types = conn.execute("SELECT " + ", ".join(
            f"'{t}'::regtype::oid" for t in HIDDEN_TYPES)).fetchone()
    found = dict(zip(("public_op", "trap_op", "cfg", "coll"), (str(o) for o in oids)))
    found["types"] = [str(o) for o in types]
    yield found
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute(DROP_SQL)


@pytest.fixture(scope="module")
def raw(gw):
    r = data.Raw(gw.conninfo("alice", "isoa"))
    yield r
    r.close()


def run(raw, protocol, sql):
    raw.reset()
    got = raw.run(protocol, sql)
    leaked = [n for n in NAMES if n in got.everything() and n not in sql]
    assert not leaked, f"{leaked} reached tenant A:\n{got.everything()[:2000]}"
    return got


PROTOCOLS = ["simple", "extended"]

# What tools read of PostgreSQL's own objects: still there.
BUILTIN = [
    ("SELECT '=(integer,integer)'::regoperator::text", [("=(integer,integer)",)]),
    ("SELECT 'pg_catalog.||(text,text)'::regoperator::text", [("||(text,text)",)]),
    ("SELECT to_regoperator('pg_catalog.||(text,text)')::text", [("||(text,text)",)]),
    ("SELECT 'pg_catalog.||/'::regoper::text", [("||/",)]),
    ("SELECT 'english'::regconfig::text, 'pg_catalog.simple'::regdictionary::text",
     [("english", "simple")]),
    ("SELECT 'pg_catalog.\"C\"'::regcollation::text, to_regcollation('\"POSIX\"')::text",
     [('"C"', '"POSIX"')]),
    ("SELECT (SELECT 'pg_catalog.english'::text)::regconfig::text", [("english",)]),
    ("SELECT count(*) > 500 FROM pg_operator", [("t",)]),
    ("SELECT count(*) > 100 FROM pg_cast WHERE castfunc <> 0", [("t",)]),
    ("SELECT count(*) > 100 FROM pg_opclass o JOIN pg_am a ON a.oid = o.opcmethod", [("t",)]),
    ("SELECT count(*) > 100 FROM pg_amop", [("t",)]),
    ("SELECT count(*) > 100 FROM pg_amproc", [("t",)]),
    ("SELECT count(*) > 5 FROM pg_ts_config_map m JOIN pg_ts_config c ON c.oid = m.mapcfg",
     [("t",)]),
    ("SELECT count(*) > 0 FROM pg_ts_parser, pg_ts_template", [("t",)]),
    ("SELECT extname FROM pg_extension WHERE extname = 'plpgsql'", [("plpgsql",)]),
    ("SELECT count(*) > 0 FROM pg_aggregate WHERE aggfnoid = 'pg_catalog.sum(int4)'"
     "::regprocedure", [("t",)]),
    ("SELECT pg_describe_object('pg_operator'::regclass, "
     "'=(integer,integer)'::regoperator, 0)", [("operator =(integer,integer)",)]),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sql, rows", BUILTIN, ids=[s[:60] for s, _ in BUILTIN])
def test_builtin_objects_stay_visible(raw, objects, protocol, sql, rows):
    got = run(raw, protocol, sql)
    assert not got.errors, got.errors
    assert got.rows == rows


# OIDs of invisible objects (learnt out of band) name nothing.
BY_OID = [
    "SELECT {public_op}::regoperator::text, {trap_op}::oid::regoper::text",
    "SELECT {cfg}::regconfig::text, {coll}::oid::regcollation::text",
    "SELECT pg_describe_object('pg_operator'::regclass, {public_op}, 0), "
    "pg_describe_object('pg_ts_config'::regclass, {cfg}, 0), "
    "pg_identify_object('pg_collation'::regclass, {coll}, 0)::text",
    "SELECT (SELECT count(*) FROM pg_operator WHERE oid IN ({public_op}, {trap_op}))"
    " + (SELECT count(*) FROM pg_depend WHERE objid IN ({public_op}, {trap_op}, {cfg}))"
    " + (SELECT count(*) FROM pg_ts_config WHERE oid = {cfg})"
    " + (SELECT count(*) FROM pg_ts_config_map WHERE mapcfg = {cfg})"
    " + (SELECT count(*) FROM pg_collation WHERE oid = {coll}) = 0",
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sql", BY_OID, ids=[s[:60] for s in BY_OID])
def test_invisible_objects_by_oid_name_nothing(raw, objects, protocol, sql):
    got = run(raw, protocol, sql.format(**objects))
    assert not got.errors, got.errors
    assert all(v in (None, "t") for row in got.rows for v in row), got.rows


# Names of invisible objects answer exactly as missing ones: literals
# (decided by the gateway) and run-time text (decided by the backend).
# regoperin/regoperatorin echo the input text in "operator does not exist:
# %s"; an invisible operator and a missing one both end in the same second
# lookup of the requoted text (policy_object_reg.c, "Timing"), so both are
# named requoted. Same SQLSTATE, same message, same absence from every catalog.
SAME = [
    ("SELECT '{X}(integer,text)'::regoperator", "public.###", "public.#@#"),
    ("SELECT to_regoperator('{X}(integer,text)')", "public.###", "public.#@#"),
    ("SELECT '{X}'::regoper", "public.###", "public.#@#"),
    ("SELECT '{X}.cr_cfg'::regconfig", "cr_hidden", "zz_missing"),
    ("SELECT to_regcollation('{X}.cr_coll')", "cr_hidden", "zz_missing"),
    ("SELECT x::regoper FROM (VALUES ('{X}.~~')) v(x)", "trap", "zz_missing"),
    ("SELECT x::regoperator FROM (VALUES ('{X}.=(integer,text)')) v(x)", "trap", "zz_missing"),
    ("SELECT x::regconfig FROM (VALUES ('{X}.cr_cfg')) v(x)", "cr_hidden", "zz_missing"),
    ("SELECT x::regcollation FROM (VALUES ('{X}.\"C\"')) v(x)", "hush", "zz_missing"),
    ("SELECT to_regoper(x) FROM (VALUES ('{X}.~~')) v(x)", "trap", "zz_missing"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sql, hidden, missing", SAME,
                         ids=[(s.values[0] if hasattr(s, "values") else s[0])[:60]
                              for s in SAME])
def test_invisible_names_answer_as_missing(raw, objects, protocol, sql, hidden, missing):
    got = [run(raw, protocol, sql.replace("{X}", name)) for name in (hidden, missing)]

    def norm(o, name):
        return (o.sqlstate, [e[2].replace(name, "<X>") for e in o.errors],
                [tuple(None if v is None else v.replace(name, "<X>") for v in r)
                 for r in o.rows])
    assert norm(got[0], hidden) == norm(got[1], missing)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hidden_schema_literal_says_missing_schema(raw, objects, protocol):
    """As PostgreSQL answers for a schema that does not exist."""
    got = run(raw, protocol, "SELECT 'cr_hidden.cr_cfg'::regconfig")
    assert got.sqlstate == "3F000", got.errors
    assert got.errors[0][1] == 'schema "cr_hidden" does not exist'


# Every catalog whose rule names schemas, functions or types: it reads, and
# PostgreSQL's own rows are all there (the gateway's count equals the
# backend's for rows that name only pg_catalog objects).
BUILTIN_ROWS = [
    ("pg_operator", "oprnamespace = 11"),
    ("pg_opclass", "opcnamespace = 11"),
    ("pg_opfamily", "opfnamespace = 11"),
    ("pg_amop", "amopfamily IN (SELECT oid FROM pg_opfamily WHERE opfnamespace = 11)"),
    ("pg_amproc", "amprocfamily IN (SELECT oid FROM pg_opfamily WHERE opfnamespace = 11)"),
    ("pg_cast", "castfunc = 0 OR castfunc < 16384"),
    ("pg_collation", "collnamespace = 11"),
    ("pg_conversion", "connamespace = 11"),
    ("pg_ts_config", "cfgnamespace = 11"),
    ("pg_ts_config_map", "mapcfg < 16384"),
    ("pg_ts_dict", "dictnamespace = 11"),
    ("pg_ts_parser", "prsnamespace = 11"),
    ("pg_ts_template", "tmplnamespace = 11"),
    ("pg_am", "oid < 16384"),
    ("pg_aggregate", "aggfnoid::oid < 16384"),
    ("pg_range", "rngtypid < 16384"),
    ("pg_language", "oid < 16384"),
    ("pg_extension", "extname = 'plpgsql'"),
    ("pg_transform", "true"),
    ("pg_event_trigger", "false"),
    ("pg_publication_namespace", "false"),
    ("pg_foreign_data_wrapper", "false"),
]


@pytest.mark.parametrize("catalog, where", BUILTIN_ROWS, ids=[c for c, _ in BUILTIN_ROWS])
def test_builtin_rows_of_every_catalog_stay(raw, postgres, objects, catalog, where):
    sql = f"SELECT count(*) FROM pg_catalog.{catalog} WHERE {where}"
    got = run(raw, "simple", sql)
    assert not got.errors, got.errors
    with postgres.connect(data.SHARED_DB) as conn:
        direct = conn.execute(sql).fetchone()[0]
    assert got.rows == [(str(direct),)]
    whole = run(raw, "extended", f"TABLE pg_catalog.{catalog} LIMIT 3")
    assert not whole.errors, whole.errors
    # An object is described exactly when its row is shown.
    described = run(raw, "simple", f"SELECT count(pg_describe_object('pg_catalog.{catalog}'"
                    f"::regclass, oid, 0)) = count(*) FROM pg_catalog.{catalog}"
                    if catalog not in ("pg_ts_config_map", "pg_range", "pg_aggregate") else
                    "SELECT true")
    assert not described.errors, described.errors
    assert described.rows == [("t",)]


@pytest.mark.parametrize("view", ["collations", "collation_character_set_applicability"])
def test_information_schema_collations(raw, objects, view):
    got = run(raw, "simple", f"SELECT count(*) > 0, count(*) FILTER (WHERE collation_schema "
              f"NOT IN ('pg_catalog')) FROM information_schema.{view}")
    assert not got.errors, got.errors
    assert got.rows == [("t", "0")]


# --------------------------------------------------------------------------
# Types are narrowed by schema (policy_catalog.c: PGW_SET_TYPE, NSPBASE)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_types_of_hidden_schemas_absent_from_catalogs(raw, objects, protocol):
    """No enum, domain, composite (or its array) of cr_hidden in pg_type,
    pg_enum, information_schema.domains; no cr_hidden in pg_namespace. The
    types a visible column uses (cr_types.cr_used, cr_dom and its array)
    show, and so does cr_types; a type of cr_types no column uses does not,
    nor the type of the hidden column."""
    got = run(raw, protocol,
              "SELECT (SELECT string_agg(typname, ',' ORDER BY typname) FROM pg_type "
              "WHERE oid >= 16384 AND typname LIKE '%cr\\_%'), "
              "(SELECT string_agg(enumlabel, ',') FROM pg_enum WHERE enumlabel LIKE 'cr\\_%'), "
              "(SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace "
              "WHERE nspname LIKE 'cr\\_%'), "
              "(SELECT count(*) FROM information_schema.domains WHERE domain_name LIKE 'cr\\_%')")
    assert not got.errors, got.errors
    assert got.rows == [("_cr_dom,_cr_used,cr_dom,cr_used", "cr_u1", "cr_types", "1")]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hidden_types_by_oid_name_nothing(raw, objects, protocol):
    """Their OIDs (learnt out of band) through format_type, ::regtype,
    pg_type_is_visible, obj_description: NULL, as for an OID that is no
    type at all."""
    for oid in objects["types"]:
        got = run(raw, protocol,
                  f"SELECT format_type({oid}, NULL), {oid}::regtype::text, "
                  f"pg_type_is_visible({oid}), (SELECT count(*) FROM pg_type WHERE oid = {oid})")
        assert not got.errors, got.errors
        assert got.rows == [(None, None, None, "0")], (oid, got.rows)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_type_used_by_a_visible_column_shows(raw, objects, protocol):
    got = run(raw, protocol,
              "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, n.nspname "
              "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace n "
              "ON n.oid = t.typnamespace WHERE a.attrelid = 'public.cr_uses'::regclass "
              "AND a.attnum > 0 ORDER BY a.attnum")
    assert not got.errors, got.errors
    assert got.rows == [("id", "integer", "int4", "pg_catalog"),
                        ("u", "cr_types.cr_used", "cr_used", "cr_types"),
                        ("d", "cr_types.cr_dom[]", "_cr_dom", "cr_types")]
    got = run(raw, protocol, "SELECT 'cr_types.cr_used'::regtype::text, "
              "to_regtype('cr_types.cr_dom[]')::text")
    assert got.rows == [("cr_types.cr_used", "cr_types.cr_dom[]")], got.errors


# A hidden type's name answers as a missing one: a literal in a hidden schema
# as a missing schema (3F000, PostgreSQL's answer), a literal in a schema
# shown only for a column's type and a run-time name as a missing type
# (42704), an unqualified one as a missing type.
TYPE_NAMES = [
    ("SELECT '{X}'::regtype", "cr_hidden.cr_mood", "zz_missing.cr_mood", "3F000"),
    ("SELECT '{X}'::regtype", "cr_types.cr_unused", "cr_types.zz_nosuch", "42704"),
    ("SELECT '{X}'::regtype", "cr_posint", "zz_nosuch", "42704"),
    ("SELECT x::regtype FROM (VALUES ('{X}')) v(x)", "cr_hidden.cr_pair",
     "public.zz_nosuch", "42704"),
    ("SELECT x::regtype FROM (VALUES ('{X}')) v(x)", "cr_types.cr_unused",
     "cr_types.zz_nosuch", "42704"),
    ("SELECT to_regtype('{X}'), to_regtype(x) FROM (VALUES ('{X}')) v(x)",
     "cr_hidden.cr_mood", "public.zz_nosuch", None),
    ("SELECT 'cr_s'::{X}", "cr_hidden.cr_secret", "zz_missing.cr_secret", "3F000"),
    ("SELECT 1::{X}", "cr_posint", "zz_nosuch", "42704"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sql, hidden, missing, sqlstate", TYPE_NAMES,
                         ids=[f"{t[0][:40]} {t[1]}" for t in TYPE_NAMES])
def test_hidden_type_names_answer_as_missing(raw, objects, protocol, sql, hidden, missing,
                                             sqlstate):
    got = [run(raw, protocol, sql.replace("{X}", name)) for name in (hidden, missing)]

    def norm(o, name):
        def sub(v):  # the whole name, then its schema part alone (3F000 names only that)
            return v.replace(name, "<X>").replace(name.split(".")[0] + '"', '<X>"')
        return (o.sqlstate, [sub(e[2]) for e in o.errors],
                [tuple(None if v is None else sub(v) for v in r) for r in o.rows])
    assert got[0].sqlstate == sqlstate, got[0].errors
    assert norm(got[0], hidden) == norm(got[1], missing)
