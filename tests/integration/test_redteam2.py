"""Red team 2 (issue 7 follow-up): holes in the newest code, the virtual
catalog's visible object sets, found by attacking main as tenant A (alice,
acme_a) would. The statements are in sql/hostile_redteam2.sql; this module
adds the objects they need and the attacks a corpus line cannot express.

The fixture adds to the shared database (and removes again) a visible
table rt2_vis whose last column is hidden, and whose default, check
constraint, expression index, statistics object, trigger and row-security
policy use objects tenant A cannot see: the sequence ticket_seq and
functions of the hidden schema hush; a column of a domain (in a schema of
its own, visible through the column) whose default and check call hush's
function; and, in hush, a composite type, a domain, a collation and a
function with an array argument; a readable view over a hidden table; an
allowed function with a SQL-standard body reading rt2_vis.
A visible object's definition is printed by the backend (pg_get_expr, pg_indexes,
information_schema.columns.column_default ...), so an object that uses a
hidden one must be as invisible as the hidden one.

Every case asserts what A would notice: no value of tenant B, no masked
value, no hidden name reaches A in rows, column names, errors (every field)
or notices; the statement gets its expected outcome; the connection still
works as A, filtered. A case that leaks today is a strict xfail naming the
hole. Kept fast: one gateway, one libpq session per protocol.
"""

import re
from pathlib import Path

import pytest

import isolation_data as data

CORPUS_PATH = Path(__file__).with_name("sql") / "hostile_redteam2.sql"
CORPUS = data.load_corpus(CORPUS_PATH)

SECRETS = data.REDTEAM_SECRETS

# Names A must not learn: isolation_data's, the hidden schemas and their
# objects, the hidden sequence, and the objects of rt2_vis that use them.
HIDDEN_NAMES = data.HIDDEN_NAMES + (
    "hush", "trap.", "leak_fn", "ticket_seq", "rt2_hidden", "rt2_chk", "rt2_trg", "rt2_comp",
    "rt2_dom", "rt2_coll", "rt2_arr", "rt2_vis_expr", "rt2_vis_st", "rt2_vis_trg",
    "rt2_vis_pol", "rt2_vis_tags_check", "rt2_flag_check")

# Corpus statements that leak today (strict xfail, reason = the hole).
KNOWN_BUGS = {}

RT2_SQL = """
CREATE FUNCTION hush.rt2_chk(integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE FUNCTION hush.rt2_trg() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE FUNCTION hush.rt2_arr(a integer[]) RETURNS integer[] LANGUAGE sql AS 'SELECT a';
CREATE TYPE hush.rt2_comp AS (x integer[], y text);
CREATE DOMAIN hush.rt2_dom AS integer;
CREATE COLLATION hush.rt2_coll FROM "C";
CREATE SCHEMA rt2_types;
GRANT USAGE ON SCHEMA rt2_types TO %(role)s;
CREATE DOMAIN rt2_types.rt2_flag AS boolean DEFAULT hush.rt2_chk(1)
    CONSTRAINT rt2_flag_check CHECK (hush.rt2_chk(2));
CREATE TABLE public.rt2_vis (
    id integer PRIMARY KEY DEFAULT nextval('ticket_seq'),
    tags integer[] CONSTRAINT rt2_vis_tags_check CHECK (hush.rt2_chk(id)),
    flag rt2_types.rt2_flag,
    rt2_hidden integer[]
);
CREATE INDEX rt2_vis_expr ON public.rt2_vis (hush.rt2_chk(id));
CREATE STATISTICS rt2_vis_st ON (hush.rt2_chk(id)), tags FROM public.rt2_vis;
CREATE TRIGGER rt2_vis_trg BEFORE INSERT ON public.rt2_vis
    FOR EACH ROW EXECUTE FUNCTION hush.rt2_trg();
CREATE POLICY rt2_vis_pol ON public.rt2_vis USING (hush.rt2_chk(id));
CREATE POLICY rt2_vis_sub ON public.rt2_vis USING (id IN (SELECT o.id FROM public.rt2_vis o));
CREATE FUNCTION public.rt2_fn() RETURNS bigint LANGUAGE sql
    BEGIN ATOMIC SELECT count(*) FROM public.rt2_vis; END;
CREATE VIEW public.rt2_view AS SELECT s.id FROM public.audit_secrets s;
CREATE VIEW public.rt2_okview AS SELECT v.id FROM public.rt2_vis v;
GRANT SELECT ON public.rt2_view, public.rt2_okview TO %(role)s;
INSERT INTO public.rt2_vis VALUES (1, '{1}', true, '{%(secret)d}');
GRANT SELECT ON public.rt2_vis TO %(role)s;
ANALYZE public.rt2_vis;
""" % {"secret": data.SECRET_NUMBER, "role": data.BACKEND_ROLE}

RT2_DROP = """
DROP VIEW IF EXISTS public.rt2_view, public.rt2_okview;
DROP FUNCTION IF EXISTS public.rt2_fn();
DROP TABLE IF EXISTS public.rt2_vis;
DROP SCHEMA IF EXISTS rt2_types CASCADE;
DROP FUNCTION IF EXISTS hush.rt2_chk(integer), hush.rt2_trg(), hush.rt2_arr(integer[]);
DROP TYPE IF EXISTS hush.rt2_comp;
DROP DOMAIN IF EXISTS hush.rt2_dom;
DROP COLLATION IF EXISTS hush.rt2_coll;
"""

RT2_POLICY = ("\n[table.public.rt2_vis]\nmask.rt2_hidden = hide\n"
              "\n[table.public.rt2_view]\n\n[table.public.rt2_okview]\n")


def corpus_params():
    return [data.corpus_param(i, sql, KNOWN_BUGS, (expect, sql, protocol), (protocol,))
            for i, (expect, sql) in enumerate(CORPUS) for protocol in ("simple", "extended")]


@pytest.fixture(scope="module")
def rt2_objects(postgres):
    data.ensure_databases(postgres)
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute(RT2_DROP)
        conn.execute(RT2_SQL)
    yield
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute(RT2_DROP)


@pytest.fixture(scope="module")
def gw(postgres, pgwarden, rt2_objects):
    settings = {**data.GATEWAY_SETTINGS, "allowed_functions": "public.rt2_fn"}
    return pgwarden(settings=settings, users=data.GATEWAY_USERS,
                    extra=data.gateway_extra(postgres) + RT2_POLICY)


@pytest.fixture(scope="module")
def session(gw):
    sessions = data.Sessions(gw)
    yield sessions
    sessions.close()


def assert_clean(outcome, sql):
    data.assert_clean(outcome, sql, SECRETS, HIDDEN_NAMES)


assert_still_a = data.assert_still_a


@pytest.mark.parametrize("expect, sql, protocol", corpus_params())
def test_redteam2_statement(session, expect, sql, protocol):
    raw = session(protocol)
    outcome = raw.run(protocol, sql)
    assert_clean(outcome, sql)
    if expect == "ok":
        assert not outcome.errors, f"expected success, got {outcome.errors}"
    elif expect == "empty":
        assert not outcome.errors, f"expected no row, got {outcome.errors}"
        assert outcome.rows == [], f"expected no row, got {outcome.rows[:5]}"
    elif expect == "null":
        assert not outcome.errors, outcome.errors
        assert outcome.rows, "expected rows (of NULLs), got none"
        assert all(v is None for row in outcome.rows for v in row), outcome.rows[:5]
    elif re.fullmatch(r"[0-9A-Z]{5}", expect):
        assert outcome.sqlstate == expect, f"expected {expect}, got {outcome.errors}"
    else:
        assert expect == "any", f"unknown expectation {expect!r}"
    assert_still_a(raw, protocol)


def test_corpus_covers_the_fixture(postgres, rt2_objects):
    """The fixture's objects really are there and really print the hidden
    names when read directly: otherwise the 'any' lines test nothing."""
    with postgres.connect(data.SHARED_DB) as conn:
        text = " ".join(str(r) for r in conn.execute(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d "
            "WHERE d.adrelid = 'rt2_vis'::regclass UNION ALL "
            "SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k "
            "WHERE k.conrelid = 'rt2_vis'::regclass UNION ALL "
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = 'rt2_vis'::regclass UNION ALL "
            "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t "
            "WHERE t.tgrelid = 'rt2_vis'::regclass").fetchall())
    for name in ("ticket_seq", "hush.rt2_chk", "hush.rt2_trg"):
        assert name in text


# Parse messages whose parameter types' input looks names up: aclitem, a
# bootstrap catalog's row type (pg_type, pg_proc, pg_class), one made by
# initdb (pg_aggregate's, looked up). Each value names a hidden object; the
# same value naming a missing one must get the same answer.
NAME_INPUT_PARAMS = [
    ("aclitem", 1033, "postgres=r/postgres", "nosuch_rt2=r/postgres"),
    ("aclitem[]", 1034, "{postgres=r/postgres}", "{nosuch_rt2=r/postgres}"),
    ("pg_type", 71, None, None),
    ("pg_class[]", 273, None, None),
    ("pg_aggregate", "pg_aggregate", "(leak_fn,n,0,-,-,-,-,-,-,-,-,-,-,-,0,0,0,0,0,0,f,f,,)",
     "(nosuch_rt2,n,0,-,-,-,-,-,-,-,-,-,-,-,0,0,0,0,0,0,f,f,,)"),
]


@pytest.mark.parametrize("label, oid, hidden, missing", NAME_INPUT_PARAMS,
                         ids=[p[0] for p in NAME_INPUT_PARAMS])
def test_parse_parameter_types_that_look_names_up(postgres, gw, label, oid, hidden, missing):
    if isinstance(oid, str):
        with postgres.connect(data.SHARED_DB) as conn:
            oid = conn.execute("SELECT %s::regtype::oid", (oid,)).fetchone()[0]
    wire = data.Wire(gw.port)
    try:
        answers = []
        for value in (hidden, missing):
            out = wire.run("SELECT $1 IS NULL", [value], [oid])
            assert out.errors, f"{label}: a parameter of OID {oid} was accepted: {out.rows}"
            assert out.errors[0][0] == "42501", out.errors
            answers.append(out.errors[0][:2])
            assert not out.leaks(SECRETS + HIDDEN_NAMES)
        assert answers[0] == answers[1], "hidden and missing names answered differently"
        ok = wire.run("SELECT $1::int + 1", ["1"], [23])
        assert ok.rows == [("2",)], ok.errors
    finally:
        wire.close()


# Every context in which the backend types an untyped literal as aclitem
# or aclitem[] (and reads it, looking its role names up, before pgwarden's
# rewrite runs). {r} is "ROLE=r/postgres"; {g} names the role as grantor
# only; {k} uses the "group" keyword form.
ACL_LITERALS = [
    "SELECT c.relacl @> '{r}' FROM pg_class c WHERE c.relname = 'orders'",
    "SELECT count(*) FROM aclexplode('{{{r}}}')",
    "SELECT count(*) FROM aclexplode('{{{g}}}')",
    "SELECT count(*) FROM aclexplode('[1:1]={{\"{r}\"}}')",
    "SELECT '{r}' = ANY (c.relacl) FROM pg_class c WHERE c.relname = 'orders'",
    "SELECT COALESCE(c.relacl, '{{{r}}}') IS NULL FROM pg_class c WHERE c.relname = 'orders'",
    "SELECT array_position(c.relacl, '{k}') FROM pg_class c WHERE c.relname = 'orders'",
    "SELECT c.relacl FROM pg_class c WHERE false UNION ALL SELECT '{{{r}}}'",
    "SELECT CASE WHEN true THEN c.relacl ELSE '{{{r}}}' END IS NULL FROM pg_class c "
    "WHERE c.relname = 'orders'",
    "SELECT c.relacl @> E'{r}'::unknown FROM pg_class c WHERE c.relname = 'orders'",
]


@pytest.mark.parametrize("sql", ACL_LITERALS, ids=[s[:40] for s in ACL_LITERALS])
def test_acl_literals_answer_alike_for_hidden_and_missing_roles(session, sql):
    """A literal the backend would read as an ACL item naming a role other
    than PUBLIC or a predefined one is refused (42501) on its text alone,
    so an existing hidden role (postgres) and a missing one answer alike;
    the session stays usable."""
    raw = session("simple")
    answers = []
    for role in ("postgres", "nosuch_rt2"):
        out = raw.run("simple", sql.format(r=f"{role}=r/postgres", g=f"=r/{role}",
                                           k=f"group {role}=r/postgres"))
        answers.append((bool(out.errors), out.sqlstate))
        assert not out.leaks(SECRETS + HIDDEN_NAMES)
    assert answers[0] == answers[1], f"hidden role {answers[0]}, missing role {answers[1]}"
    assert answers[0] == (True, "42501"), answers
    assert raw.run("simple", "SELECT 1").rows == [("1",)]


# The same with the text bound to an untyped parameter: the backend infers
# aclitem (or aclitem[]) and reads the Bind value with aclitem's input,
# after the policy has seen the statement and without its seeing the value.
ACL_PARAMETERS = [
    ("SELECT c.relacl @> $1 FROM pg_class c WHERE c.relname = 'orders'", "{r}"),
    ("SELECT count(*) FROM aclexplode($1)", "{{{r}}}"),
    ("SELECT $1 = ANY (c.relacl) FROM pg_class c WHERE c.relname = 'orders'", "{r}"),
]


@pytest.mark.parametrize("sql, value", ACL_PARAMETERS, ids=[s[:40] for s, _ in ACL_PARAMETERS])
def test_acl_parameters_answer_alike_for_hidden_and_missing_roles(session, sql, value):
    """The backend would read the Bind value as aclitem: the Parse is
    refused (42501) whatever the value, so a hidden role and a missing one
    answer alike."""
    raw = session("extended")
    answers = []
    for role in ("postgres", "nosuch_rt2"):
        out = raw.run("extended", sql, [value.format(r=f"{role}=r/postgres")])
        answers.append((bool(out.errors), out.sqlstate))
        assert not out.leaks(SECRETS + HIDDEN_NAMES)
    assert answers[0] == answers[1], f"hidden role {answers[0]}, missing role {answers[1]}"
    assert answers[0] == (True, "42501"), answers
    assert raw.run("extended", "SELECT 1").rows == [("1",)]


# Untyped parameters the backend types as a reg* type (or an array of one)
# from their context, so the Bind value is read by regclassin & co, which
# look the name up: each pair is a hidden name and a missing one. Without
# the check the hidden one succeeds (or fails on USAGE of its schema) where
# the missing one fails 42P01 / 42704 / 3F000.
REG_PARAMETERS = [
    ("SELECT COALESCE($1, 'pg_class'::regclass) IS NULL", "public.audit_secrets",
     "public.nosuch_rt2"),
    ("SELECT COALESCE($1, 'pg_class'::regclass) IS NULL", "hush.keyring", "nosuch_rt2.keyring"),
    ("SELECT CASE WHEN true THEN $1 ELSE 'int4'::regtype END IS NULL", "hush.rt2_comp",
     "hush.nosuch_rt2"),
    ("SELECT ARRAY[$1, 'now'::regproc] IS NULL", "hush.rt2_chk", "hush.nosuch_rt2"),
    ("SELECT COALESCE($1, 'now()'::regprocedure) IS NULL", "hush.rt2_chk(integer)",
     "hush.nosuch_rt2(integer)"),
    ("SELECT COALESCE($1, 'pg_monitor'::regrole) IS NULL", "postgres", "nosuch_rt2"),
    ("SELECT x IS NULL FROM (VALUES ('pg_catalog'::regnamespace), ($1)) v(x)", "hush",
     "nosuch_rt2"),
    ("SELECT COALESCE($1, '\"C\"'::regcollation) IS NULL", "hush.rt2_coll", "hush.nosuch_rt2"),
    ("SELECT COALESCE($1, 'english'::regconfig) IS NULL", "hush.english", "nosuch_rt2.english"),
    ("SELECT COALESCE($1, 'simple'::regdictionary) IS NULL", "hush.simple", "nosuch_rt2.simple"),
    ("SELECT COALESCE($1, '+(int4,int4)'::regoperator) IS NULL", "hush.+(int4,int4)",
     "nosuch_rt2.+(int4,int4)"),
    ("SELECT 'pg_class'::regclass UNION ALL SELECT $1", "audit_secrets", "nosuch_rt2"),
    ("SELECT $1 = ARRAY['pg_class'::regclass]", "{public.audit_secrets}", "{public.nosuch_rt2}"),
    ("SELECT COALESCE($1, ARRAY['pg_monitor'::regrole]) IS NULL", "{postgres}", "{nosuch_rt2}"),
    ("DECLARE rt2_cur CURSOR FOR SELECT COALESCE($1, 'pg_class'::regclass)", "audit_secrets",
     "nosuch_rt2"),
]


@pytest.mark.parametrize("sql, hidden, missing", REG_PARAMETERS,
                         ids=[f"{i}-{s[:40]}" for i, (s, _, _) in enumerate(REG_PARAMETERS)])
def test_reg_parameters_answer_alike_for_hidden_and_missing_names(session, sql, hidden, missing):
    """The Parse of a statement that would type a parameter as a reg* type
    is refused (42501, naming the parameter and the type, with a hint)
    before any Bind value is read: hidden and missing names answer alike."""
    raw = session("extended")
    answers = []
    for value in (hidden, missing):
        if sql.startswith("DECLARE"):
            raw.reset()
            raw.run("simple", "BEGIN")
        out = raw.run("extended", sql, [value])
        assert not out.leaks(SECRETS + HIDDEN_NAMES)
        answers.append((out.sqlstate, out.errors[0][1] if out.errors else out.rows))
    assert answers[0] == answers[1], f"hidden {answers[0]}, missing {answers[1]}"
    assert answers[0][0] == "42501" and "$1" in answers[0][1], answers
    raw.reset()
    assert raw.run("extended", "SELECT 1").rows == [("1",)]


# Parse messages that declare a parameter "unknown" (OID 705), which the
# backend types from the context exactly like an unspecified one.
DECLARED_UNKNOWN = [
    ("SELECT COALESCE($1, 'pg_class'::regclass) IS NULL", "public.audit_secrets", "public.nosuch_rt2"),
    ("SELECT count(*) FROM aclexplode($1)", "{postgres=r/postgres}", "{nosuch_rt2=r/postgres}"),
]


@pytest.mark.parametrize("sql, hidden, missing", DECLARED_UNKNOWN,
                         ids=[s[:40] for s, _, _ in DECLARED_UNKNOWN])
def test_parameters_declared_unknown_answer_alike(gw, sql, hidden, missing):
    wire = data.Wire(gw.port)
    try:
        answers = []
        for value in (hidden, missing):
            out = wire.run(sql, [value], [705])
            answers.append(out.errors[0][:1] if out.errors else ("ok", out.rows))
            assert not out.leaks(SECRETS + HIDDEN_NAMES)
        assert answers[0] == answers[1], f"hidden {answers[0]}, missing {answers[1]}"
        assert answers[0] == ("42501",), answers
        ok = wire.run("SELECT $1::int + 1", ["1"], [705])
        assert ok.rows == [("2",)], ok.errors
    finally:
        wire.close()


def test_prepare_must_declare_its_parameter_types(session):
    """A PREPARE whose parameter the backend would type from the context
    (regclass here) reads EXECUTE's argument with that type's input: it is
    refused unless every parameter is declared, and a declared one of a
    lookup type is refused as before."""
    raw = session("simple")
    answers = []
    for value in ("public.audit_secrets", "public.nosuch_rt2"):
        out = raw.run("simple", "PREPARE rt2_reg AS SELECT COALESCE($1, 'pg_class'::regclass) "
                                f"IS NULL; EXECUTE rt2_reg('{value}')")
        answers.append(out.sqlstate)
        assert not out.leaks(SECRETS + HIDDEN_NAMES)
        raw.run("simple", "DEALLOCATE ALL")
    assert answers == ["0A000", "0A000"], answers
    out = raw.run("simple", "PREPARE rt2_unk(unknown) AS SELECT COALESCE($1, 'pg_class'::regclass)")
    assert out.sqlstate == "0A000", out.errors
    out = raw.run("simple", "PREPARE rt2_ok(int) AS SELECT $1 + 1; EXECUTE rt2_ok(41); "
                            "DEALLOCATE rt2_ok")
    assert out.rows == [("42",)], out.errors


UNTYPED_FINE = [
    ("SELECT relname FROM pg_class WHERE relname = $1", ["orders"], [("orders",)]),
    ("SELECT $1::int + 1", ["41"], [("42",)]),
    ("SELECT $1", ["x"], [("x",)]),
    ("SELECT count(*) FROM pg_class WHERE oid = $1", ["1259"], [("1",)]),
    ("SELECT count(*) FROM pg_class WHERE oid = $1::regclass", ["pg_class"], [("1",)]),
    ("SELECT $1::text::regclass::oid = 'pg_class'::regclass::oid", ["pg_class"], [("t",)]),
    ("SELECT count(*) FROM pg_type WHERE typname = $1 AND typnamespace = $2",
     ["int4", "11"], [("1",)]),
    ("SELECT $1 = ANY (ARRAY[1, 2])", ["2"], [("t",)]),
    ("SELECT count(*) FROM pg_class c WHERE c.relname = $1 AND c.relkind = ANY ($2)",
     ["orders", "{r,v}"], [("1",)]),
]


@pytest.mark.parametrize("sql, params, rows", UNTYPED_FINE, ids=[s[:40] for s, _, _ in UNTYPED_FINE])
def test_untyped_parameters_of_other_types_still_run(session, sql, params, rows):
    """Untyped parameters the backend types as anything but a lookup type
    (name, text, int, oid, char[]) run as on PostgreSQL, and so does a
    regclass parameter the client casts itself (the run-time wrapper
    checks that one)."""
    raw = session("extended")
    out = raw.run("extended", sql, params)
    assert not out.errors, out.errors
    assert out.rows == rows


# Literals that read as ACL text but look up no role (an invalid privilege
# letter comes first, or only a predefined role is named), or are typed:
# they run as on PostgreSQL. (A bare 'mode=a' is refused: read as an ACL
# item it would look the role "mode" up.)
ACL_HARMLESS = [
    "SELECT count(*) FROM aclexplode('{=r/pg_read_all_data}')",
    "SELECT 'mode=a'::text = 'mode=a'::text",
    "SELECT count(*) FROM orders WHERE 'a=b' = 'c=v'",
    "SELECT 'https://x.test/?q=1&utm_source=ads' LIKE '%utm_source=ad%'",
    "SELECT 'k=v'",
]


@pytest.mark.parametrize("sql", ACL_HARMLESS, ids=[s[:40] for s in ACL_HARMLESS])
def test_harmless_acl_like_literals_run(session, sql):
    out = session("simple").run("simple", sql)
    assert not out.errors, out.errors


def test_view_definitions_show_when_they_name_only_visible_objects(session):
    """A readable view over a readable table keeps its definition; one over
    a hidden table reads but shows none."""
    raw = session("simple")
    out = raw.run("simple", "SELECT pg_get_viewdef('rt2_okview'::regclass), "
                            "pg_get_viewdef('rt2_view'::regclass)")
    assert not out.errors, out.errors
    assert out.rows[0][0] is not None and "rt2_vis" in out.rows[0][0], out.rows
    assert out.rows[0][1] is None, out.rows
    out = raw.run("simple", "SELECT viewname, definition IS NULL FROM pg_views "
                            "WHERE viewname LIKE 'rt2%' ORDER BY 1")
    assert out.rows == [("rt2_okview", "f"), ("rt2_view", "t")], out.rows
    out = raw.run("simple", "SELECT count(*) FROM rt2_view")
    assert out.rows == [("2",)], (out.rows, out.errors)


def test_visible_table_still_reads(session):
    """What the tenant may see of rt2_vis still works: its rows, its
    visible columns in the catalog, its primary key."""
    raw = session("simple")
    out = raw.run("simple", "SELECT * FROM rt2_vis")
    assert not out.errors, out.errors
    assert out.columns == ["id", "tags", "flag"], out.columns
    assert out.rows == [("1", "{1}", "t")]
    out = raw.run("simple", "SELECT conname FROM pg_constraint "
                            "WHERE conrelid = 'rt2_vis'::regclass AND contype = 'p'")
    assert out.rows == [("rt2_vis_pkey",)], out.rows


def test_untyped_parameters_keep_their_inferred_types(session):
    """The Parse goes with the types the backend inferred, so Describe
    reports what PostgreSQL would: name, int2, text."""
    raw = session("extended")
    pg = raw.pgconn
    res = pg.prepare(b"rt2_types", b"SELECT relname FROM pg_class WHERE relname = $1 "
                                   b"AND relnatts > $2 AND $3 = 'x'::text", None)
    assert res.status == data.pq.ExecStatus.COMMAND_OK, res.error_message
    res = pg.describe_prepared(b"rt2_types")
    assert [res.param_type(i) for i in range(res.nparams)] == [19, 21, 25]
    res = pg.exec_prepared(b"rt2_types", [b"orders", b"0", b"x"])
    assert res.ntuples == 1 and res.get_value(0, 0) == b"orders"
    pg.exec_(b"DEALLOCATE rt2_types")


def test_untyped_parameters_in_failing_statements_get_the_backends_error(session):
    """When the backend cannot analyse the statement, the Parse answers
    with its error, as PostgreSQL would; in a transaction it is aborted
    as by the failed Parse."""
    raw = session("extended")
    out = raw.run("extended", "SELECT nosuch_rt2_col = $1 FROM orders", ["1"])
    assert out.sqlstate == "42703", out.errors
    out = raw.run("extended", "SELECT 1 WHERE $1 IS NULL", ["1"])
    assert out.sqlstate == "42P18", out.errors
    raw.run("simple", "BEGIN")
    out = raw.run("extended", "SELECT nosuch_rt2_col = $1 FROM orders", ["1"])
    assert out.sqlstate == "42703", out.errors
    out = raw.run("extended", "SELECT $1::int", ["1"])
    assert out.sqlstate == "25P02", out.errors
    raw.reset()
    assert raw.run("extended", "SELECT $1::int", ["1"]).rows == [("1",)]


def test_long_statements_with_untyped_parameters(session):
    """A statement past the inline limit (decided on a policy thread) is
    checked whole: a lookup type is refused, another type runs."""
    raw = session("extended")
    pad = " OR ".join(f"{i} = {i + 1}" for i in range(2000))
    assert len(pad) > 20000
    out = raw.run("extended", f"SELECT COALESCE($1, 'pg_class'::regclass) IS NULL WHERE ({pad}) "
                              "OR true", ["audit_secrets"])
    assert out.sqlstate == "42501", out.errors
    out = raw.run("extended", f"SELECT $1::int + 1 WHERE ({pad}) OR true", ["1"])
    assert out.rows == [("2",)], out.errors
    out = raw.run("extended", f"SELECT relname FROM pg_class WHERE relname = $1 AND ({pad} "
                              "OR true)", ["orders"])
    assert out.rows == [("orders",)], out.errors


def test_parameters_checked_in_transaction_pool_mode(postgres, pgwarden, rt2_objects):
    """Transaction pooling re-prepares statements where the client lands:
    the check holds there too, and the types go with the statement."""
    settings = {**data.GATEWAY_SETTINGS, "pool_mode": "transaction"}
    gw = pgwarden(settings=settings, users=data.GATEWAY_USERS,
                  extra=data.gateway_extra(postgres) + RT2_POLICY)
    raw = data.Raw(gw.conninfo("alice", "isoa"))
    try:
        for role in ("postgres", "nosuch_rt2"):
            out = raw.run("extended", "SELECT count(*) FROM aclexplode($1)",
                          [f"{{{role}=r/postgres}}"])
            assert out.sqlstate == "42501", out.errors
        pg = raw.pgconn
        res = pg.prepare(b"rt2_tx", b"SELECT relname FROM pg_class WHERE relname = $1", None)
        assert res.status == data.pq.ExecStatus.COMMAND_OK, res.error_message
        for _ in range(3):
            res = pg.exec_prepared(b"rt2_tx", [b"orders"])
            assert res.ntuples == 1 and res.get_value(0, 0) == b"orders", res.error_message
        res = pg.describe_prepared(b"rt2_tx")
        assert res.param_type(0) == 19
    finally:
        raw.close()


def test_repeated_untyped_parameters(session):
    """The session keeps the backend's answers: the unnamed statement sent
    again and again (node-postgres, psycopg) keeps its types and its rows;
    a refused one stays refused."""
    raw = session("extended")
    for name in ("orders", "customers", "orders"):
        out = raw.run("extended", "SELECT relname FROM pg_class WHERE relname = $1", [name])
        assert out.rows == [(name,)], out.errors
    for value in ("audit_secrets", "nosuch_rt2", "audit_secrets"):
        out = raw.run("extended", "SELECT COALESCE($1, 'pg_class'::regclass) IS NULL", [value])
        assert out.sqlstate == "42501", out.errors


def test_a_failed_parameter_probe_leaves_nothing_for_the_next_client(postgres, pgwarden,
                                                                      rt2_objects):
    """The question about a Parse's parameter types PREPAREs under a name of
    pgwarden's; a statement_timeout (set by SELECT set_config, which no SET
    tag shows) that hits it after the PREPARE left the statement on the
    session, and in transaction pooling the tenant's next client got that
    session: it saw the statement in pg_prepared_statements and could
    EXECUTE another client's query. No client may see or name one now."""
    settings = {**data.GATEWAY_SETTINGS, "pool_mode": "transaction", "pool_size": 1}
    gw = pgwarden(settings=settings, users=data.GATEWAY_USERS,
                  extra=data.gateway_extra(postgres) + RT2_POLICY)
    timeouts, seen = 0, []
    for ms in (1, 2, 1, 2, 3, 1, 2, 3):
        first = data.Raw(gw.conninfo("alice", "isoa"))
        try:
            first.run("simple", "BEGIN")
            first.run("simple", f"SELECT set_config('statement_timeout', '{ms}ms', true)")
            out = first.run("extended", "SELECT count(*) FROM orders WHERE $1::text IS NOT NULL",
                            ["x"])
            timeouts += out.sqlstate == "57014"
            first.run("simple", "ROLLBACK")
        finally:
            first.close()
        nxt = data.Raw(gw.conninfo("admin", "isoa"))
        try:
            out = nxt.run("simple", "SELECT name FROM pg_prepared_statements")
            assert out.errors == [], out.errors
            seen += out.rows
            for name in ("pgwarden_param_probe_1", "pgwarden_param_probe_2"):
                out = nxt.run("simple", f"EXECUTE {name}('x')")
                assert out.sqlstate == "42501", (name, out.errors, out.rows)
                nxt.reset()
            out = nxt.run("extended", "SELECT relname FROM pg_class WHERE relname = $1",
                          ["orders"])
            assert out.rows == [("orders",)], out.errors
        finally:
            nxt.close()
    assert seen == [], f"the next client saw {seen}"
    assert timeouts > 0, "no probe was cut short: the case tests nothing"


def test_probe_statement_names_are_reserved(session):
    """PREPARE, EXECUTE and DEALLOCATE of a probe's name are refused."""
    raw = session("simple")
    for sql in ("PREPARE pgwarden_param_probe_9(int) AS SELECT $1",
                "EXECUTE pgwarden_param_probe_9(1)", "DEALLOCATE pgwarden_param_probe_9"):
        out = raw.run("simple", sql)
        assert out.sqlstate == "42501" and "reserved" in out.errors[0][1], (sql, out.errors)
        raw.reset()
    out = raw.run("simple", "PREPARE rt2_not_reserved(int) AS SELECT $1 + 1")
    assert out.errors == [], out.errors
    assert raw.run("simple", "EXECUTE rt2_not_reserved(1)").rows == [("2",)]
    assert ("rt2_not_reserved",) in raw.run("simple",
                                            "SELECT name FROM pg_prepared_statements").rows
    raw.run("simple", "DEALLOCATE rt2_not_reserved")


def test_settings_made_by_set_config_stay_with_their_client(postgres, pgwarden, rt2_objects):
    """In transaction pooling a client's settings are its own: one set with
    set_config(name, value, false) must not show in the next client's
    session (TimeZone changes its results, statement_timeout cancels its
    statements). The link follows SET by its command tag, which a
    set_config() call has not, so the session form is refused there with a
    hint; the local form and SET work, and stay with their client."""
    settings = {**data.GATEWAY_SETTINGS, "pool_mode": "transaction", "pool_size": 1}
    gw = pgwarden(settings=settings, users=data.GATEWAY_USERS,
                  extra=data.gateway_extra(postgres) + RT2_POLICY)
    first = data.Raw(gw.conninfo("alice", "isoa"))
    try:
        base = first.run("simple", "SHOW statement_timeout").rows
        for local in ("false", "'f'", "'off'", "'0'", "'nonsense'"):
            out = first.run("simple", f"SELECT set_config('statement_timeout', '4321ms', {local})")
            assert out.sqlstate == "0A000", (local, out.errors)
            assert "SET" in out.errors[0][2], out.errors
        out = first.run("simple", "BEGIN; SELECT set_config('statement_timeout', '4321ms', true); "
                                  "SHOW statement_timeout; COMMIT")
        assert out.errors == [] and ("4321ms",) in out.rows, out.errors
        assert first.run("simple", "SET statement_timeout = '4322ms'").errors == []
        assert first.run("simple", "SHOW statement_timeout").rows == [("4322ms",)]
    finally:
        first.close()
    nxt = data.Raw(gw.conninfo("admin", "isoa"))
    try:
        assert nxt.run("simple", "SHOW statement_timeout").rows == base
    finally:
        nxt.close()
