"""Tenant isolation under attack (issues 3 and 7).

Tenant A (alice) shares one database with tenant B. Every hostile statement of
sql/hostile.sql and sql/hostile_iso.sql runs through pgwarden over the simple
protocol and again over the extended protocol; whatever comes back — rows,
column names, errors with every field, notices, COPY data — must not carry
the marker, the secret number, or the name of an object A may not know
about. After each statement the connection still answers, as tenant A, and at
the end the database is exactly as it was.

Then the leak-proof evaluation proofs (issue 7, class 1): predicates that fail
only on B's rows, generated in every position a qual can take (WHERE, JOIN
ON, HAVING, CTEs, LATERAL, IN/EXISTS, UNION, VALUES joins, cursors, COPY,
PREPARE, ASK), never fail and answer exactly what A's own database answers;
and the common lookups still use their index through the rewrite (the
rewritten SQL, from the audit log, EXPLAINed on PostgreSQL directly).
Class 2 (a function or operator named like a built-in on the search_path
never runs), class 4 (EXPLAIN of tenant data is refused) and class 8 (deep
statements are refused, the connection stays usable) follow.
"""

import re
from pathlib import Path

import psycopg
import pytest

import askutil
import isolation_data as data
from conftest import wait_until

SQL_DIR = Path(__file__).with_name("sql")
CORPUS = (data.load_corpus(SQL_DIR / "hostile.sql")
          + data.load_corpus(SQL_DIR / "hostile_iso.sql"))


# Statements that currently leak: real pgwarden bugs, kept failing loudly
# (strict xfail) until the policy is fixed.
KNOWN_BUGS = {
}


def _test_id(index, sql):
    words = re.sub(r"\s+", " ", sql)[:60]
    return f"{index:03d} {words}"


def _corpus_params():
    params = []
    for i, (expect, sql) in enumerate(CORPUS):
        marks = []
        if sql in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[sql]))
        params.append(pytest.param(expect, sql, id=_test_id(i, sql), marks=marks))
    return params


@pytest.fixture(scope="module")
def shared(postgres, pgwarden):
    gw = data.start_gateway(pgwarden, postgres)
    before = data.snapshot(postgres)
    sessions = {}

    def session(protocol):
        if protocol not in sessions:
            sessions[protocol] = data.Raw(gw.conninfo("alice", "isoa"))
        return sessions[protocol]

    yield gw, before, session
    for raw in sessions.values():
        raw.close()


def _decode_unicode_escapes(sql):
    """U&"..." identifiers as PostgreSQL reads them (\\XXXX, or !XXXX with UESCAPE '!')."""
    return re.sub(r"[\\!]([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), sql)


def hidden_names_not_in(sql):
    """Hidden object names the statement did not write itself (an error may
    echo what the client wrote; it must not name anything else)."""
    lowered = _decode_unicode_escapes(sql).lower()
    return tuple(n for n in data.HIDDEN_NAMES if n.lower() not in lowered)


def is_multi_statement_refusal(outcome):
    return outcome.sqlstate == "42601" and "multiple commands" in outcome.errors[0][1]


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("expect, sql", _corpus_params())
def test_hostile_statement(shared, protocol, expect, sql):
    gw, _, session = shared
    raw = session(protocol)
    raw.reset()
    outcome = raw.run(protocol, sql)

    leaked = outcome.leaks(data.SECRETS + hidden_names_not_in(sql))
    assert not leaked, f"{leaked} leaked through {protocol}:\n{outcome.everything()[:2000]}"

    # The extended protocol takes one statement per Parse: PostgreSQL itself
    # refuses a multi-statement string there, whatever pgwarden decided.
    multi = protocol == "extended" and is_multi_statement_refusal(outcome)
    if expect == "ok" and not multi:
        assert not outcome.errors, f"expected success, got {outcome.errors}"
    elif expect == "err":
        assert outcome.errors, f"expected a refusal, got rows {outcome.rows[:5]}"
    elif re.fullmatch(r"[0-9A-Z]{5}", expect) and not multi:
        assert outcome.sqlstate == expect, f"expected {expect}, got {outcome.errors}"

    # The connection still works, still as tenant A, still filtered.
    raw.reset()
    check = raw.run(protocol, "SELECT count(*), min(tenant_id), max(tenant_id) FROM customers")
    assert not check.errors, f"connection unusable after the statement: {check.errors}"
    assert check.rows == [(str(data.N_CUSTOMERS), data.TENANT_A, data.TENANT_A)]
    assert raw.ok


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 600
    assert len(data.load_corpus(SQL_DIR / "hostile_iso.sql")) >= 300
    assert len(data.oracle_statements()) >= 600
    assert all(sql in {s for _, s in CORPUS} for sql in KNOWN_BUGS)


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("reset", ["RESET search_path", "RESET ALL", "DISCARD ALL",
                                   "SET search_path = hush, public"])
def test_search_path_stays_pinned(shared, protocol, reset):
    """Whatever the client resets or tries to set, names resolve as pinned."""
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    raw.run(protocol, reset)
    raw.reset()
    got = raw.run(protocol, "SHOW search_path")
    assert got.rows == [("public",)], got.errors
    hidden = raw.run(protocol, "SELECT * FROM keyring")
    assert hidden.sqlstate == "42P01" and not hidden.leaks()
    raw.reset()


def test_simple_and_extended_really_differ(shared):
    """The two paths are the two protocols: only Query ('Q') accepts two
    statements in one message."""
    _, _, session = shared
    simple = session("simple").simple("SELECT 1; SELECT 2")
    extended = session("extended").extended("SELECT 1; SELECT 2")
    assert simple.rows == [("1",), ("2",)] and not simple.errors
    assert is_multi_statement_refusal(extended)
    session("simple").reset()
    session("extended").reset()


# --------------------------------------------------------------------------
# Hidden objects look exactly like missing ones
# --------------------------------------------------------------------------

PROBES = [
    "SELECT * FROM {}",
    "SELECT count(*) FROM public.{}",
    "SELECT to_regclass('{}')",
    "SELECT to_regclass('public.{}') IS NULL",
    "SELECT count(*) FROM pg_class WHERE relname = '{}'",
    "SELECT count(*) FROM information_schema.tables WHERE table_name = '{}'",
    "SELECT count(*) FROM information_schema.columns WHERE table_name = '{}'",
    "SELECT count(*) FROM pg_tables WHERE tablename = '{}'",
    "SELECT has_table_privilege('{}', 'SELECT')",
    "SELECT '{}'::regclass",
    "SELECT pg_relation_size('{}')",
    "EXPLAIN SELECT * FROM {}",
    "COPY {} TO STDOUT",
]


@pytest.mark.parametrize("hidden", ["audit_secrets", "staff_salaries", "secret_view"])
@pytest.mark.parametrize("probe", PROBES)
def test_hidden_relation_indistinguishable_from_missing(shared, probe, hidden):
    _, _, session = shared
    raw = session("extended")
    raw.reset()
    got = raw.extended(probe.format(hidden))
    raw.reset()
    missing = raw.extended(probe.format("no_such_rel"))
    raw.reset()
    strip = lambda o: (o.sqlstate, [e[1].replace(hidden, "X").replace("no_such_rel", "X")
                                    for e in o.errors], o.rows, o.columns)
    assert strip(got) == strip(missing)


@pytest.mark.parametrize("probe", [
    "SELECT count(*) FROM information_schema.columns WHERE column_name = '{}'",
    "SELECT count(*) FROM pg_attribute WHERE attname = '{}'",
    "SELECT has_column_privilege('customers', '{}', 'SELECT')",
    "SELECT {} FROM customers",
    "SELECT c.{} FROM customers c",
    "SELECT count(*) FROM customers GROUP BY {}",
])
def test_hidden_column_indistinguishable_from_missing(shared, probe):
    _, _, session = shared
    raw = session("extended")
    raw.reset()
    got = raw.extended(probe.format("internal_rating"))
    raw.reset()
    missing = raw.extended(probe.format("no_such_col"))
    raw.reset()
    strip = lambda o: (o.sqlstate, [e[1].replace("internal_rating", "X").replace(
        "no_such_col", "X") for e in o.errors], o.rows, o.columns)
    assert strip(got) == strip(missing)


# --------------------------------------------------------------------------
# Leak-proof evaluation
# --------------------------------------------------------------------------

# Each predicate fails (error) on every row of tenant B and on no row of A.
FAILING_ON_B_ONLY = [
    ("SELECT id FROM customers WHERE "
     "1/(CASE WHEN name LIKE 'Z%' THEN 0 ELSE 1 END) = 1 ORDER BY id"),
    "SELECT id FROM customers WHERE (CASE WHEN name LIKE 'Z%' THEN name ELSE '1' END)::int = 1 "
    "ORDER BY id",
    "SELECT id FROM customers WHERE credit_limit::int2 > 0 ORDER BY id",
    "SELECT id FROM orders WHERE 1/(amount - 987654320 - 1) <> 7 ORDER BY id",
    "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
    "WHERE 1/(CASE WHEN c.city LIKE 'Z%' THEN 0 ELSE 1 END) = 1 ORDER BY o.id",
]


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql", FAILING_ON_B_ONLY)
def test_predicate_failing_on_other_tenant_rows_does_not_fail(shared, postgres, protocol, sql):
    """Evaluated on A's rows only, these predicates never fail: the result is
    exactly what a database holding only A's rows gives."""
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, sql)
    raw.reset()
    assert not got.errors, f"predicate reached another tenant's rows: {got.errors}"
    with postgres.connect(data.REF_DB) as conn:
        want = [tuple(str(v) for v in row) for row in conn.execute(sql).fetchall()]
    assert got.rows == want


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql", [
    # the two attacks of the issue, on a column only B's values break
    "SELECT * FROM customers WHERE name::int = 1",
    "SELECT * FROM customers WHERE 1/(CASE WHEN ssn LIKE '1%' THEN 0 ELSE 1 END) = 1",
    "SELECT * FROM orders WHERE region::int = 1",
])
def test_issue_attacks_reveal_nothing(shared, protocol, sql):
    """Either an error that carries no value, or rows of tenant A only."""
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, sql)
    raw.reset()
    assert not got.leaks(), got.everything()[:2000]
    if got.errors:
        message = got.errors[0][2]
        for own in ("Customer", "north", "south", "east", "west"):
            assert own not in message, f"error carries a value: {message}"
    else:
        assert all(data.TENANT_A in row for row in got.rows)


def _rewritten(gw, marker):
    """The rewritten SQL of the statement containing marker, from the audit log."""
    rec = askutil.wait_for_audit(gw.dir / "audit.jsonl",
                                 lambda r: marker in (r.get("sql") or "") and r.get("rewritten"),
                                 what=f"the audit record of {marker}")
    return rec["rewritten"]


INDEXED = [
    ("SELECT * FROM orders WHERE id = 42", None, "orders_pkey"),
    ("SELECT id, amount FROM orders WHERE customer_id = 7", None, "orders_customer_idx"),
    ("SELECT * FROM orders WHERE id IN (42, 43, 100042)", None, "orders_pkey"),
    ("SELECT * FROM orders WHERE id = ANY('{42,43}')", None, "orders_pkey"),
    ("SELECT * FROM orders WHERE id BETWEEN 40 AND 45", None, "orders_pkey"),
    ("SELECT * FROM orders WHERE id = $1", [42], "orders_pkey"),
    ("SELECT * FROM orders WHERE id = ANY($1)", [[42, 43]], "orders_pkey"),
    ("SELECT o.amount, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
     "WHERE o.id = 42", None, "orders_pkey"),
    ("SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 7",
     None, "orders_customer_idx"),
    ("SELECT * FROM customers WHERE id = 7 AND name IS NOT NULL", None, "customers_pkey"),
    ("WITH o AS (SELECT * FROM orders) SELECT * FROM o WHERE id = 42", None, "orders_pkey"),
    ("SELECT s.k FROM (SELECT id AS k, amount FROM orders) s WHERE s.k IN (42, 43)", None,
     "orders_pkey"),
    ("SELECT relname FROM pg_class WHERE oid = 1259", None, "pg_class_oid_index"),
    ("SELECT attname FROM pg_attribute WHERE attrelid = 1259 AND attnum > 0", None,
     "pg_attribute_relid_attnum_index"),
]


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql, params, index", INDEXED, ids=[s for s, _, _ in INDEXED])
def test_rewrite_keeps_index_use(shared, postgres, protocol, sql, params, index):
    """The allowlisted shapes stay below the row filter: the rewritten SQL
    (as pgwarden forwarded it) uses the index on PostgreSQL itself."""
    gw, _, session = shared
    raw = session(protocol)
    raw.reset()
    if params is not None and protocol == "simple":
        pytest.skip("parameters need the extended protocol")
    marker = f"/* idx {protocol} {INDEXED.index((sql, params, index))} */"
    text = f"{sql} {marker}"
    wire_params = None if params is None else [
        "{" + ",".join(map(str, p)) + "}" if isinstance(p, list) else p for p in params]
    got = raw.run(protocol, text, wire_params)
    raw.reset()
    assert not got.errors, got.errors
    assert not got.leaks()
    rewritten = _rewritten(gw, marker)
    assert "OFFSET 0" not in rewritten, rewritten
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute("SET search_path = public")
        conn.execute("SET enable_seqscan = off")
        if params is None:
            rows = conn.execute(f"EXPLAIN {rewritten}").fetchall()
        else:
            conn.execute(f"PREPARE idx_q AS {rewritten}")
            args = ", ".join("'" + v + "'" if isinstance(v, str) else str(v) for v in wire_params)
            rows = conn.execute(f"EXPLAIN EXECUTE idx_q({args})").fetchall()
            conn.execute("DEALLOCATE idx_q")
        plan = "\n".join(r[0] for r in rows)
    assert re.search(r"Index Scan|Index Only Scan|Bitmap Index Scan", plan), plan
    assert index in plan and "Index Cond" in plan, plan


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql", [
    "EXPLAIN SELECT * FROM orders WHERE id = 42",
    "EXPLAIN SELECT name FROM customers WHERE name < 'M'",
    "EXPLAIN ANALYZE SELECT count(*) FROM orders",
    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM orders WHERE region = 'north'",
    "EXPLAIN SELECT relname FROM pg_class WHERE relname = 'customers'",
    "EXPLAIN SELECT * FROM products p WHERE p.id IN (SELECT product_id FROM orders)",
])
def test_explain_of_tenant_data_is_refused(shared, protocol, sql):
    """Estimates come from every tenant's rows (class 4): refused, with a hint."""
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, sql)
    raw.reset()
    assert got.sqlstate == "42501", got.errors
    assert "EXPLAIN" in got.errors[0][1]
    assert "shared tables" in got.errors[0][2]
    assert not got.rows and not got.leaks()


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_explain_of_shared_tables_still_works(shared, protocol):
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, "EXPLAIN SELECT * FROM products WHERE id = 3")
    raw.reset()
    assert not got.errors, got.errors
    assert any("products" in r[0] for r in got.rows)


def test_indexed_lookup_returns_own_row_only(shared):
    _, _, session = shared
    raw = session("extended")
    raw.reset()
    own = raw.extended("SELECT id, tenant_id FROM orders WHERE id = $1", [42])
    other = raw.extended("SELECT id, tenant_id FROM orders WHERE id = $1", [100042])
    assert own.rows == [("42", data.TENANT_A)]
    assert other.rows == [] and not other.errors


# --------------------------------------------------------------------------
# The oracle generator: predicates failing only on B's rows, everywhere
# --------------------------------------------------------------------------

ORACLES = data.oracle_statements()
_REFERENCE = {}


def _reference_rows(postgres, sql):
    """What A's own database answers (as text, like the wire)."""
    if sql not in _REFERENCE:
        with postgres.connect(data.REF_DB) as conn:
            rows = conn.execute(data.reference_sql(sql)).fetchall()
        _REFERENCE[sql] = [tuple(None if v is None else _text(v) for v in r) for r in rows]
    return _REFERENCE[sql]


def _text(v):
    if isinstance(v, bool):
        return "t" if v else "f"
    return str(v)


def _copy_rows(outcome):
    return [tuple(line.rstrip("\n").split("\t")) for (line,) in outcome.rows]


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("case, sql", ORACLES, ids=[c for c, _ in ORACLES])
def test_oracle_never_fires(shared, postgres, protocol, case, sql):
    """The predicate errors on every row of B: through pgwarden it must never
    reach one, whatever the position, and the answer is A's own."""
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, sql)
    raw.reset()
    assert not got.errors, f"{case}: the predicate ran on another tenant's row: {got.errors}"
    assert not got.leaks(), got.everything()[:1000]
    rows = _copy_rows(got) if sql.startswith("COPY") else got.rows
    assert sorted(rows, key=repr) == sorted(_reference_rows(postgres, sql), key=repr)


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("position, statements, counted", data.MULTI_POSITIONS,
                         ids=[p for p, _, _ in data.MULTI_POSITIONS])
@pytest.mark.parametrize("name, pred", data.ORDER_ORACLES, ids=[n for n, _ in data.ORDER_ORACLES])
def test_oracle_never_fires_in_cursors_and_prepared(shared, postgres, protocol, position,
                                                   statements, counted, name, pred):
    _, _, session = shared
    raw = session(protocol)
    raw.reset()
    outcomes = [raw.run(protocol, st.format(p=pred)) for st in statements]
    raw.reset()
    for o in outcomes:
        assert not o.errors, f"{position}/{name}: {o.errors}"
        assert not o.leaks()
    inner = statements[0].format(p=pred)
    query = inner[inner.index("SELECT"):]
    assert outcomes[counted].rows == _reference_rows(postgres, query)


@pytest.fixture(scope="module")
def wire(shared):
    gw, _, _ = shared
    w = data.Wire(gw.port)
    yield w
    w.close()


@pytest.mark.parametrize("name, pred", data.ORDER_ORACLES, ids=[n for n, _ in data.ORDER_ORACLES])
@pytest.mark.parametrize("types", [(), (23,), (20,), (1700,)], ids=["untyped", "int4", "int8",
                                                                      "numeric"])
def test_oracle_never_fires_with_typed_parameters(wire, name, pred, types):
    """A raw Parse with parameter type OIDs: B's key by parameter, then the
    predicate — nothing comes back and nothing fails."""
    got = wire.run(f"SELECT o.id FROM orders o WHERE o.id = $1 AND {pred}", [100001], types)
    assert not got.errors, got.errors
    assert got.rows == [] and not got.leaks()
    own = wire.run(f"SELECT o.id FROM orders o WHERE o.id = $1 AND {pred}", [42], types)
    assert not own.errors and own.rows == [("42",)]


def test_oracle_predicates_are_real(shared, postgres):
    """Each predicate does fail on B's rows and does not on A's: run directly
    on the shared database and on A's own."""
    with postgres.connect(data.SHARED_DB) as conn:
        for name, pred in data.ORDER_ORACLES:
            with pytest.raises(psycopg.Error):
                conn.execute(f"SELECT count(*) FROM orders o WHERE o.id > 100000 AND ({pred})")
    with postgres.connect(data.REF_DB) as conn:
        for name, pred in data.ORDER_ORACLES:
            conn.execute(f"SELECT count(*) FROM orders o WHERE {pred}").fetchall()


@pytest.fixture(scope="module")
def ask_gateway(postgres, pgwarden):
    llm = askutil.FakeLLM()
    data.ensure_databases(postgres)
    gw = pgwarden(settings={**data.GATEWAY_SETTINGS}, users=data.GATEWAY_USERS,
                  extra=data.gateway_extra(postgres) + askutil.llm_section(llm))
    yield gw, llm
    llm.stop()


ASK_CASES = [(f"{pos}/{name}", tpl.format(p=pred))
             for pos, tpl in data.POSITIONS if not tpl.startswith("COPY")
             and pos in ("where", "where-key", "join-on", "having", "cte-body", "lateral",
                         "in-subquery", "exists", "union", "values-join")
             for name, pred in data.ORDER_ORACLES[:8]]


@pytest.mark.parametrize("case, sql", ASK_CASES, ids=[c for c, _ in ASK_CASES])
def test_oracle_never_fires_through_ask(ask_gateway, postgres, case, sql):
    """The model's SQL is user SQL: the same oracles, asked for by a model."""
    gw, llm = ask_gateway
    question = f"oracle {case}"
    llm.script([{"match": askutil.exact(question), "reply": askutil.sql_reply(sql)}])
    raw = data.Raw(gw.conninfo("alice", "isoa"))
    try:
        got = raw.simple(f"ASK {question}")
    finally:
        raw.close()
    assert not got.errors, got.errors
    assert not got.leaks()
    assert sorted(got.rows, key=repr) == sorted(_reference_rows(postgres, sql), key=repr)


# --------------------------------------------------------------------------
# Class 2: a function or operator named like a built-in never runs
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trapped(postgres, pgwarden):
    """A gateway whose pinned search_path puts the trap schema first (no blank
    after the comma: pool.c passes it in libpq's options unescaped)."""
    gw = data.start_gateway(pgwarden, postgres, search_path="trap,public")
    raw = data.Raw(gw.conninfo("alice", "isoa"))
    yield raw
    raw.close()


TRAPS = [
    # (statement, must it answer?) Each would run a trap.* function if the
    # rewrite let PostgreSQL resolve the name through the search_path.
    ("SELECT length(c) FROM customers c", False),
    ("SELECT count(c) FROM customers c", True),
    ("SELECT lower(id), upper(id) FROM customers", False),
    ("SELECT abs('1') FROM customers", True),  # trap.abs(text) wins unqualified
    ("SELECT c1.id FROM customers c1, customers c2 WHERE c1 = c2", True),
    ("SELECT id FROM customers WHERE id = 'x'::text", False),
    ("SELECT id FROM customers WHERE id < 'x'::text", False),
    ("SELECT id FROM customers WHERE id LIKE 'x'", False),
    ("SELECT id || id FROM customers", False),
    ("SELECT count(*) FROM customers WHERE name LIKE 'Customer%'", True),
    ("SELECT email, ssn, loyalty_code FROM customers ORDER BY id", True),
    ("SELECT md5(id) FROM customers", False),
    ("SELECT c1.id FROM customers c1 WHERE c1 IN (SELECT c2 FROM customers c2)", True),
    ("SELECT c1.id FROM customers c1 JOIN customers c2 ON c1 = c2", True),
    # named implicitly by the grammar: allowed only when the built-in is sure to win
    ("SELECT id FROM customers WHERE id IN (1, 2)", True),
    ("SELECT CASE id WHEN 1 THEN 'one' END FROM customers", True),
    ("SELECT id FROM customers WHERE name IS DISTINCT FROM upper(name)", False),
    ("SELECT NULLIF(c1, c2) FROM customers c1, customers c2", False),
    ("SELECT id FROM customers c1 WHERE c1 IN (c1)", False),
    ("SELECT id FROM customers WHERE id = ANY('{1,2}')", True),
    ("SELECT id FROM customers WHERE id OPERATOR(pg_catalog.=) 3", True),
    ("SELECT trap.length(c) FROM customers c", False),
    ("SELECT c.length FROM customers c", False),
    ("SELECT c.count FROM customers c", False),
    ("SELECT (c.id).lower FROM customers c", False),
    ("SELECT (c).length FROM customers c", False),
    ("SELECT id FROM customers WHERE id OPERATOR(trap.=) 'x'", False),
]


@pytest.mark.parametrize("sql, answers", TRAPS, ids=[t for t, _ in TRAPS])
@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_functions_named_like_builtins_never_run(trapped, protocol, sql, answers):
    trapped.reset()
    got = trapped.run(protocol, sql)
    trapped.reset()
    assert not any("trap ran" in n for n in got.notices), got.notices
    assert not got.leaks(), got.everything()[:1000]
    if answers:
        assert not got.errors, got.errors
    else:
        assert got.errors, got.rows[:3]


# --------------------------------------------------------------------------
# Class 8: no statement crashes the gateway; past the bounds, 54001
# --------------------------------------------------------------------------

DEEP = [
    ("SELECT " + "+".join(["1"] * 6000), "54001"),
    ("SELECT " + "NOT " * 9000 + "true", "54001"),
    ("SELECT count(*) FROM orders WHERE id = " + "+".join(["1"] * 6000), "54001"),
    ("SELECT 1" + " UNION SELECT 1" * 12000, "54001"),
    ("SELECT " + "abs(" * 20000 + "1" + ")" * 20000, None),
    ("SELECT " + "(" * 50000 + "1" + ")" * 50000, None),
    ("SELECT " + "'a'||" * 30000 + "'a'", "54001"),
    ("SELECT " + "ARRAY[" * 8000 + "1" + "]" * 8000, None),
]

# Deep, but within the bound (and PostgreSQL's own): they run.
DEEP_OK = [
    "SELECT " + "NOT " * 4500 + "true",
    "SELECT count(*) FROM orders WHERE " + "NOT " * 2000 + "id = 1",
    "SELECT 1" + " UNION ALL SELECT 1" * 2000,
    "SELECT " + "+".join(["1"] * 2500),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql", DEEP_OK, ids=[f"{s[:20]}...{len(s)}" for s in DEEP_OK])
def test_deep_statement_within_bound_runs(shared, protocol, sql):
    gw, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, sql)
    raw.reset()
    assert not got.errors, got.errors
    assert got.rows and gw.alive()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql, sqlstate", DEEP, ids=[f"{s[:20]}...{len(s)}" for s, _ in DEEP])
def test_deep_statement_is_refused_and_connection_survives(shared, protocol, sql, sqlstate):
    gw, _, session = shared
    raw = session(protocol)
    raw.reset()
    got = raw.run(protocol, sql)
    raw.reset()
    assert got.errors, "a statement past the nesting bound was run"
    if sqlstate is not None:
        assert got.sqlstate == sqlstate, got.errors
        assert "too deeply nested" in got.errors[0][1]
    else:  # PostgreSQL's own parser (or its limits) may give up first
        assert got.sqlstate in ("54001", "42601", "54000"), got.errors
    check = raw.run(protocol, "SELECT count(*) FROM customers")
    assert check.rows == [(str(data.N_CUSTOMERS),)] and not check.errors
    assert gw.alive()


@pytest.mark.timeout(120)
def test_wide_statements_are_checked(shared, postgres):
    """8,000 arguments (PostgreSQL itself stops at 100: its 54023 comes back)
    and 100,000-element lists are rewritten and run; the connection lives."""
    _, _, session = shared
    raw = session("simple")
    raw.reset()
    args = ", ".join(f"id + {i}" for i in range(8000))
    got = raw.simple(f"SELECT concat({args}) FROM customers WHERE id = 1")
    assert got.sqlstate == "54023", got.errors
    got = raw.simple(f"SELECT array_length(ARRAY[{args}], 1) FROM customers WHERE id = 1")
    assert not got.errors and got.rows == [("8000",)]
    ids = ", ".join(str(i) for i in range(100000))
    got = raw.simple(f"SELECT count(*) FROM orders WHERE id IN ({ids})")
    assert not got.errors and got.rows == [(str(data.N_ORDERS),)]
    raw.reset()


# --------------------------------------------------------------------------
# Last: nothing changed
# --------------------------------------------------------------------------


def test_zz_database_unchanged(shared, postgres):
    _, before, _ = shared
    after = data.snapshot(postgres)
    changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
               if before.get(k) != after.get(k)}
    assert not changed, f"the shared database changed: {changed}"
