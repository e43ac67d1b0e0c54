"""Red team 3 (issue 7 follow-up): the data path. Hostile statements of
tenant A (alice, acme_a) aimed at tenant B's rows and at masked values, in
sql/hostile_redteam3.sql, run on the simple and the extended protocol, in
session and in transaction pool mode.

What each line asserts, by its expectation:
- every line: no value of tenant B, no masked value, no hidden name reaches A
  in rows, column names, errors (every field) or notices, and the connection
  still answers as A, filtered;
- oracle: the statement succeeds through pgwarden, and is a real oracle: it
  fails on isoshared read directly and succeeds on tenant A's reference copy
  isoref_a (test_oracle_lines_are_real);
- same: the rows equal those of isoref_a, where A's masked values are stored
  already masked. An ORDER BY, a count, a comparison or a length computed on
  the true value instead of the mask gives other rows than the reference;
- ok / err: success / failure.
A line that leaks today is a strict xfail naming the hole (KNOWN_BUGS).
Kept fast: one gateway per pool mode, one libpq session per protocol.
"""

import struct
import time
from pathlib import Path

import psycopg
import pytest

import isolation_data as data

CORPUS_PATH = Path(__file__).with_name("sql") / "hostile_redteam3.sql"
CORPUS = data.load_corpus(CORPUS_PATH)

SECRETS = data.REDTEAM_SECRETS
HIDDEN_NAMES = data.REDTEAM_HIDDEN_NAMES

# Corpus statements that leak today (strict xfail, reason = the hole).
KNOWN_BUGS = {}


def hidden_names_not_in(sql):
    return data.hidden_names_not_in(sql, HIDDEN_NAMES)


def corpus_params():
    """Session pool mode: every line on both protocols. Transaction pool mode
    (the backend session changes between statements): the oracle and same
    lines on the extended protocol, to keep the module fast."""
    out = []
    for i, (expect, sql) in enumerate(CORPUS):
        runs = [("session", "simple"), ("session", "extended")]
        if expect in ("oracle", "same"):
            runs.append(("transaction", "extended"))
        out += [data.corpus_param(i, sql, KNOWN_BUGS, (mode, expect, sql, protocol),
                                  (mode, protocol)) for mode, protocol in runs]
    return out


@pytest.fixture(scope="module")
def session(postgres, pgwarden):
    gateways, opened = {}, {}

    def get(mode, protocol):
        if mode not in gateways:
            gateways[mode] = data.start_gateway(pgwarden, postgres, pool_mode=mode,
                                                pool_size="2")
        if (mode, protocol) not in opened:
            opened[mode, protocol] = data.Raw(gateways[mode].conninfo("alice", "isoa"))
        opened[mode, protocol].reset()
        return opened[mode, protocol]
    yield get
    for raw in opened.values():
        raw.close()


@pytest.fixture(scope="module")
def reference(postgres):
    """isoref_a read directly, rows as text: what A should see."""
    data.ensure_databases(postgres)
    raw = data.Raw(postgres.conninfo(data.REF_DB, "postgres"))
    cache = {}

    def rows(sql):
        if sql not in cache:
            out = raw.simple(sql)
            assert not out.errors, f"reference failed: {out.errors}"
            cache[sql] = out.rows
        return cache[sql]
    yield rows
    raw.close()


def assert_clean(outcome, sql):
    data.assert_clean(outcome, sql, SECRETS, HIDDEN_NAMES)


assert_still_a = data.assert_still_a


@pytest.mark.parametrize("mode, expect, sql, protocol", corpus_params())
def test_redteam3_statement(session, reference, mode, expect, sql, protocol):
    raw = session(mode, protocol)
    outcome = raw.run(protocol, sql)
    assert_clean(outcome, sql)
    if expect in ("ok", "oracle"):
        assert not outcome.errors, f"expected success, got {outcome.errors}"
    elif expect == "same":
        assert not outcome.errors, f"expected success, got {outcome.errors}"
        want = reference(sql)
        assert outcome.rows == want, f"got {outcome.rows[:6]}, isoref_a gives {want[:6]}"
    elif expect == "err":
        assert outcome.errors, f"expected a refusal, got rows {outcome.rows[:5]}"
    else:
        assert expect == "any", f"unknown expectation {expect!r}"
    assert_still_a(raw, protocol)


def test_corpus_is_substantial():
    assert len(CORPUS) >= 400
    assert sum(1 for e, _ in CORPUS if e == "oracle") >= 70
    assert sum(1 for e, _ in CORPUS if e == "same") >= 70


def test_oracle_lines_are_real(postgres):
    data.check_oracle_lines(postgres, CORPUS)


# --------------------------------------------------------------------------
# Availability: one tenant's heavy statement holds nobody else up
# --------------------------------------------------------------------------

HEAVY = "SELECT count(*) FROM orders o1, orders o2, orders o3"  # runs to statement_timeout


def peak_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def gw_session(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


def test_a_long_statement_holds_no_other_client(gw_session):
    """While alice's cross join runs (minutes of work, bounded only by the
    statement timeout), bob (tenant B) and a second alice session on the same
    two-worker gateway are answered: every answer arrives while the heavy
    statement is still busy."""
    heavy = data.Raw(gw_session.conninfo("alice", "isoa"))
    others = [data.Raw(gw_session.conninfo("bob", "isob")),
              data.Raw(gw_session.conninfo("alice", "isoa"))]
    try:
        heavy.pgconn.send_query(HEAVY.encode())
        for _ in range(3):
            for raw in others:
                out = raw.simple("SELECT count(*), min(tenant_id) FROM customers")
                assert not out.errors, out.errors
                assert out.rows[0][0] == str(data.N_CUSTOMERS)
                heavy.pgconn.consume_input()
                assert heavy.pgconn.is_busy(), "the heavy statement ended first: test is vacuous"
    finally:
        heavy.close()
        for raw in others:
            raw.close()


def test_a_huge_row_is_relayed_not_buffered(gw_session):
    """A 200 MB value (one DataRow, and one COPY row) reaches the client
    whole, and the gateway's peak memory grows by far less than the row."""
    raw = data.Raw(gw_session.conninfo("alice", "isoa"))
    try:
        before = peak_kb(gw_session.proc.pid)
        out = raw.simple("SELECT repeat('x', 200000000)")
        assert not out.errors, out.errors
        assert len(out.rows[0][0]) == 200000000
        out = raw.simple("COPY (SELECT repeat('y', 200000000)) TO STDOUT")
        assert not out.errors, out.errors
        assert len(out.rows[0][0]) == 200000001  # with the newline
        grown = peak_kb(gw_session.proc.pid) - before
        assert grown < 64 * 1024, f"gateway peak grew {grown} kB relaying a 200 MB row"
        assert_still_a(raw, "simple")
    finally:
        raw.close()


def read_until_ready(wire):
    """Every message up to ReadyForQuery: (kinds, error fields as text)."""
    kinds, texts = [], []
    while True:
        kind, payload = wire.session.read_message()
        kinds.append(kind)
        if kind in (b"E", b"N"):
            texts.append("\n".join(wire.session._fields(payload).values()))
        elif kind == b"T":  # RowDescription: the column names
            texts.append(payload.decode(errors="replace"))
        if kind == b"Z":
            return kinds, texts


def parse(wire, name, sql, types=()):
    payload = name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", len(types))
    payload += b"".join(struct.pack("!I", t) for t in types)
    wire._msg(b"P", payload)


def test_a_pipeline_of_thousands_of_parses(gw_session):
    """5,000 named Parse messages (half of them hostile or invalid) and one
    Describe each, in a single pipeline with one Sync: the gateway answers
    them all (in order, stopping at the first error as PostgreSQL does),
    leaks nothing, and the session still works."""
    wire = data.Wire(gw_session.port)
    try:
        for i in range(2500):
            parse(wire, f"ok{i}", f"SELECT {i} AS n, count(*) FROM customers")
            wire._msg(b"D", b"S" + f"ok{i}".encode() + b"\0")
        parse(wire, "bad", "SELECT secret FROM audit_secrets")
        for i in range(2500):
            parse(wire, f"after{i}", "SELECT 1")
        wire._msg(b"S", b"")
        kinds, texts = read_until_ready(wire)
        assert kinds.count(b"1") == 2500, kinds[:10]
        assert kinds.count(b"E") == 1, texts
        joined = "\n".join(texts)
        assert not [s for s in SECRETS if s in joined], joined
        out = wire.run("SELECT count(*), max(tenant_id) FROM customers")
        assert out.rows == [(str(data.N_CUSTOMERS), data.TENANT_A)], (out.rows, out.errors)
    finally:
        wire.close()


ODD_DESCRIBES = [
    "",                                           # empty query
    ";",
    "SELECT",                                     # no columns
    "SELECT * FROM customers c, orders o",        # a masked and hidden column set
    "SELECT c FROM customers c",                  # a row of a masked relation
    "SELECT $1::customers",
    "SELECT $1 = ANY ($2)",
    "VALUES ($1), (2)",
    "SELECT * FROM audit_secrets",
    "SELECT internal_rating FROM customers",
    "DECLARE x CURSOR FOR SELECT * FROM customers",
    "SHOW search_path",
    "EXPLAIN SELECT * FROM customers",
    "PREPARE q AS SELECT 1",
    "SELECT (SELECT secret FROM audit_secrets)",
]


@pytest.mark.parametrize("sql", ODD_DESCRIBES, ids=[s[:40] or "empty" for s in ODD_DESCRIBES])
def test_describe_of_odd_statements(gw_session, sql):
    """Parse + Describe (statement) + Sync of odd or hostile statements, and
    Describe of a portal and a statement that do not exist: an answer for
    each, nothing hidden in RowDescription names or error fields, the
    session usable afterwards."""
    wire = data.Wire(gw_session.port)
    try:
        parse(wire, "s", sql)
        wire._msg(b"D", b"Ss\0")
        wire._msg(b"D", b"Pnosuch\0")
        wire._msg(b"D", b"Snosuch\0")
        wire._msg(b"S", b"")
        kinds, texts = read_until_ready(wire)
        joined = "\n".join(texts)
        assert not [s for s in SECRETS + hidden_names_not_in(sql) if s in joined], joined
        out = wire.run("SELECT count(*), max(tenant_id) FROM customers")
        assert out.rows == [(str(data.N_CUSTOMERS), data.TENANT_A)], (out.rows, out.errors)
    finally:
        wire.close()


# A masked column compared with a bound parameter (extended protocol, text
# parameters of unspecified type): the comparison sees the mask, exactly as
# with a literal (the reference runs the literal on isoref_a).
PARAM_CASES = [
    ("SELECT count(*) FROM customers c WHERE c.email LIKE $1", "'Z%'", "Z%"),
    ("SELECT count(*) FROM customers c WHERE c.ssn LIKE $1", "'Z%'", "Z%"),
    ("SELECT count(*) FROM customers c WHERE c.phone > $1", "'Y'", "Y"),
    ("SELECT count(*) FROM customers c WHERE c.loyalty_code >= $1", "'Z'", "Z"),
    ("SELECT count(*) FROM customers c WHERE position($1 in c.email) > 0", "'Z'", "Z"),
    ("SELECT count(*) FROM customers c WHERE c.email = ANY (string_to_array($1, ','))",
     "'a,b'", "a,b"),
    ("SELECT c.id FROM customers c ORDER BY c.email > $1, c.id LIMIT 5", "'Y'", "Y"),
]


@pytest.mark.parametrize("mode", ["session", "transaction"])
@pytest.mark.parametrize("sql, literal, value", PARAM_CASES, ids=[c[0][30:70] for c in PARAM_CASES])
def test_masked_column_against_a_parameter(session, reference, mode, sql, literal, value):
    raw = session(mode, "extended")
    out = raw.extended(sql, [value])
    assert_clean(out, sql)
    assert not out.errors, out.errors
    assert out.rows == reference(sql.replace("$1", literal))
    assert_still_a(raw, "extended")


# --------------------------------------------------------------------------
# Hidden names answer exactly as missing ones (red team 3, second round)
# --------------------------------------------------------------------------

# {rel}, {fn}, {nsp}: a hidden relation, function and schema of tenant A's
# database, or a name that exists nowhere; both must give the same answer
# (the name written by the client aside). Untyped string literals a reg*
# input function reads because of their context (COALESCE, CASE, ARRAY,
# VALUES, UNION, GREATEST, IN, operators, array functions) looked the
# hidden name up with the backend role's view of the catalogs and answered
# (the table's name, its OID), where a missing name failed 42P01; the text
# search calls' regconfig and COLLATE named a hidden schema's object 42704
# where a missing schema is 3F000.
HIDDEN = {"{rel}": "audit_secrets", "{fn}": "leak_fn", "{nsp}": "hush"}
MISSING = {"{rel}": "audit_secretz", "{fn}": "leak_fz", "{nsp}": "hushz"}

ALIKE = [
    "SELECT COALESCE(NULL::regclass, '{rel}')",
    "SELECT COALESCE(NULL::regclass, '{rel}')::oid",
    "SELECT COALESCE(NULL::regclass, 'public.{rel}')",
    "SELECT count(*) FROM pg_class c WHERE c.oid::regclass IN ('{rel}', 'customers')",
    "SELECT CASE WHEN true THEN NULL::regclass ELSE '{rel}' END",
    "SELECT ARRAY[NULL::regclass, '{rel}']",
    "SELECT * FROM (VALUES (NULL::regclass), ('{rel}')) v(r)",
    "SELECT NULL::regclass UNION SELECT '{rel}'",
    "SELECT '{rel}' UNION ALL SELECT 'x' UNION ALL SELECT NULL::regclass",
    "SELECT c.oid::regclass FROM pg_class c WHERE c.relname = 'customers' UNION ALL SELECT '{rel}'",
    "SELECT GREATEST(NULL::regclass, '{rel}')",
    "SELECT LEAST(to_regclass('customers'), '{rel}')",
    "SELECT array_append(NULL::regclass[], '{rel}')",
    "SELECT array_position(ARRAY[NULL::regclass], '{rel}')",
    "SELECT NULL::regclass[] || '{{rel}}'",
    "SELECT NULL::regclass[] @> '{{rel}}'",
    "WITH x AS (SELECT c.oid::regclass AS r FROM pg_class c LIMIT 1) "
    "SELECT COALESCE(x.r, '{rel}') FROM x",
    "SELECT COALESCE(s.r, '{rel}') FROM (SELECT to_regclass('customers')) s(r)",
    "SELECT COALESCE(s.to_regclass, '{rel}') FROM (SELECT to_regclass('customers')) s",
    "SELECT COALESCE(pg_typeof(1), '{rel}')",
    "SELECT COALESCE(NULL::regtype, '{rel}')",
    "SELECT COALESCE(NULL::regproc, '{fn}')",
    "SELECT COALESCE((SELECT NULL::regprocedure), '{fn}()')",
    "SELECT COALESCE(NULL::regnamespace, '{nsp}')",
    "SELECT COALESCE(NULL::regconfig, '{nsp}.english')",
    "SELECT COALESCE(t.typinput, '{fn}') FROM pg_type t LIMIT 1",
    "SELECT COALESCE(unnest(ARRAY[NULL::regclass]), '{rel}')",
    "SELECT COALESCE(NULL::regclass, '{rel}'::unknown)",
    "SELECT COALESCE(mode() WITHIN GROUP (ORDER BY c.oid::regclass), '{rel}') FROM pg_class c",
    "SELECT s.* FROM (SELECT NULL::regclass AS r) s UNION ALL SELECT '{rel}'",
    "SELECT COALESCE(u, '{rel}') FROM unnest(ARRAY[NULL::regclass]) u",
    "SELECT COALESCE(unnest, '{rel}') FROM unnest(ARRAY[NULL::regclass])",
    "SELECT COALESCE(p.pktable, '{rel}') FROM pg_get_catalog_foreign_keys() p LIMIT 1",
    "SELECT to_tsvector('{nsp}.english', 'a b')",
    "SELECT to_tsquery('{nsp}.english', 'a'), plainto_tsquery('simple', 'a')",
    "SELECT websearch_to_tsquery('{nsp}.english', 'a')",
    "SELECT ts_headline('{nsp}.english', 'a b', 'a'::tsquery)",
    "SELECT ts_headline('{nsp}.english', 'a b', 'a'::tsquery, 'MaxWords=2')",
    "SELECT 'x' COLLATE {nsp}.c",
    "SELECT 'x' COLLATE {nsp}.\"C\" < 'y'",
    "SELECT c.name FROM customers c ORDER BY c.name COLLATE {nsp}.\"C\" LIMIT 1",
    "SELECT * FROM json_to_record('{\"a\": \"x\"}') AS j(a text COLLATE {nsp}.c)",
    # round 4: a window function's default, XMLTABLE's column types, a
    # literal under COLLATE (still untyped; the backend coerces under it)
    "SELECT lag(x, 1, '{rel}') OVER () FROM (VALUES ('pg_class'::regclass)) v(x)",
    "SELECT lead(x, 1, '{rel}') OVER () FROM (VALUES ('pg_class'::regclass)) v(x)",
    "SELECT * FROM XMLTABLE('/a' PASSING '<a>{rel}</a>' COLUMNS x regclass PATH '.')",
    "SELECT COALESCE(NULL::regclass, '{rel}' COLLATE \"C\")",
    "SELECT ARRAY[NULL::regclass, ('{rel}' COLLATE \"C\")::unknown]",
    "SELECT ROW(ARRAY['pg_class'::regclass]) = ROW('{{rel}}')",
    "SELECT (ARRAY['pg_class'::regclass], 1) IN (('{{rel}}', 1))",
    "SELECT (1, ARRAY['pg_class'::regclass]) < (1, '{{rel}}')",
    "SELECT to_tsvector('{nsp}.english' COLLATE \"C\", 'a b')",
    "SELECT ts_headline('{nsp}.english' COLLATE \"C\", 'a b', 'a'::tsquery)",
    # the explicit forms (checked before this round): the baseline
    "SELECT '{rel}'::regclass",
    "SELECT has_table_privilege('{rel}', 'SELECT')",
    "SELECT to_regclass('{rel}'), to_regclass('public.{rel}')",
    "SELECT '{rel}'::regtype",
    "SELECT '{nsp}.english'::regconfig",
]


def fill(template, names):
    for k, v in names.items():
        template = template.replace(k, v)
    return template


def answer(outcome, name):
    """What a user sees, with the name they wrote taken out."""
    norm = lambda s: None if s is None else s.replace(name, "NAME")  # noqa: E731
    return ([(e[0], norm(e[1])) for e in outcome.errors],
            [tuple(norm(v) for v in row) for row in outcome.rows],
            [norm(c) for c in outcome.columns])


@pytest.fixture(scope="module")
def alike_session(gw_session):
    sessions = data.Sessions(gw_session)
    yield sessions
    sessions.close()


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("template", ALIKE, ids=[t[7:60] for t in ALIKE])
def test_hidden_names_answer_as_missing_ones(alike_session, template, protocol):
    raw = alike_session(protocol)
    got = {}
    for label, names in (("hidden", HIDDEN), ("missing", MISSING)):
        sql = fill(template, names)
        out = raw.run(protocol, sql)
        assert_clean(out, sql)
        got[label] = answer(out, next(v for k, v in names.items() if k in template))
        raw.reset()
    assert got["hidden"] == got["missing"], got
    assert_still_a(raw, protocol)


# Latency: a hidden name must not be answered faster (or slower) than a
# missing one. The answer to a missing name comes from the backend (it may
# be an index or a sequence the policy's snapshot does not list); a hidden
# relation named in a literal was refused by the policy itself, in a tenth
# of the time: 'audit_secrets'::regclass took 1 ms, 'audit_secretz'::regclass
# 17 ms. The fastest of interleaved runs is compared (noise only adds).
TIMED = [
    "SELECT '{rel}'::regclass",
    "SELECT 'public.{rel}'::regclass",
    "SELECT has_table_privilege('{rel}', 'SELECT')",
    "SELECT pg_relation_size('{rel}')",
    "SELECT pg_get_viewdef('{rel}')",
    "SELECT '{rel}'::regtype",
    "SELECT 'public.{rel}'::regtype",
    # a hidden relation's row type and a type the backend does not know are
    # both refused by the policy (the snapshot lists the types, schema.c)
    "SELECT NULL::{rel}",
]

# A column given with a relation: the run-time column check read the
# relation with regclassin, which fails at once (at plan time) for a missing
# name and not for a hidden one, whose statement then built the visible set
# before failing (2-3 ms more). It reads it with to_regclass now.
TIMED_STRICT = [
    "SELECT has_column_privilege('{rel}', 'secret', 'SELECT')",
    "SELECT pg_get_serial_sequence('{rel}', 'id')",
]


def fastest(raw, protocol, sqls, rounds):
    import time
    best = [float("inf")] * len(sqls)
    for _ in range(rounds):
        for i, sql in enumerate(sqls):
            t0 = time.perf_counter()
            raw.run(protocol, sql)
            best[i] = min(best[i], time.perf_counter() - t0)
            raw.reset()
    return best


@pytest.mark.serial  # a wall-time comparison: alone, or a neighbour decides it
@pytest.mark.parametrize("template", TIMED, ids=lambda t: t[7:50] if isinstance(t, str) else None)
def test_hidden_names_take_as_long_as_missing_ones(alike_session, template):
    raw = alike_session("extended")
    hidden, missing = fill(template, HIDDEN), fill(template, MISSING)
    for sql in (hidden, missing):  # the same answer first, or timing means nothing
        out = raw.run("extended", sql)
        raw.reset()
        assert out.errors, f"{sql}: expected the error of a missing name"
    h, m = fastest(raw, "extended", [hidden, missing], rounds=25)
    ratio = max(h, m) / min(h, m)
    assert ratio < 1.6, f"hidden {h * 1e6:.0f} us, missing {m * 1e6:.0f} us"


@pytest.mark.serial  # a wall-time comparison: alone, or a neighbour decides it
@pytest.mark.parametrize("template", TIMED_STRICT, ids=lambda t: t[7:50])
def test_hidden_names_take_as_long_as_missing_ones_closely(gw_session, postgres, template):
    """The same, to within 15 %: a difference of a few milliseconds on a
    statement of ten is still an answer. Timed on the backend, which the
    difference came from (60-70 % there), without the gateway's noise: the
    statements pgwarden forwarded (its audit log) run there interleaved."""
    from test_hidden_paths import audit_records
    raw = data.Raw(gw_session.conninfo("alice", "isoa"))
    try:
        texts = [fill(template, HIDDEN), fill(template, MISSING)]
        for sql in texts:
            assert raw.run("extended", sql).sqlstate == "42P01", sql
    finally:
        raw.close()
    recs = audit_records(gw_session, texts)
    forwarded = [recs[t]["rewritten"] for t in texts]
    best = [float("inf")] * 2
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute(f"SET ROLE {data.BACKEND_ROLE}")
        conn.execute("SET search_path = public")
        for _ in range(60):  # the first rounds warm the session's caches
            for i, sql in enumerate(forwarded):
                t0 = time.perf_counter()
                with pytest.raises(psycopg.errors.UndefinedTable):
                    conn.execute(sql)
                best[i] = min(best[i], time.perf_counter() - t0)
    h, m = best
    assert max(h, m) / min(h, m) < 1.15, f"hidden {h * 1e6:.0f} us, missing {m * 1e6:.0f} us"
