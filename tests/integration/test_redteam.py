"""Red team corpus (issue 7 follow-up): what a determined tenant tried
against the build of main, in sql/hostile_redteam.sql plus the attacks a
corpus line cannot express (two tenants in turn, ASK, the result cache,
transaction pooling, masks).

Every case asserts what tenant A (alice, acme_a) would notice: nothing of
tenant B (its rows, its tenant id), no masked value and no hidden name
reaches A in rows, column names, errors (every field) or notices; the
statement gets its expected outcome; the connection still works as A,
filtered. A case that leaks today is a strict xfail naming the hole, so it
fails loudly once the hole is closed; everything else is a regression guard.

Kept fast: one gateway per module fixture, one libpq session per protocol.
"""

import hashlib
import re
import struct
from pathlib import Path

import pytest

import askutil
import pgwire
from conftest import rss_kb, wait_until
import isolation_data as data

CORPUS_PATH = Path(__file__).with_name("sql") / "hostile_redteam.sql"
CORPUS = data.load_corpus(CORPUS_PATH)

# What A must never see: B's values and id, the secret number, hidden
# names (unless the statement wrote the name itself: an error may echo it).
SECRETS = data.REDTEAM_SECRETS

# Corpus statements that leak today (strict xfail, reason = the hole).
KNOWN_BUGS = {}


HIDDEN_NAMES = data.REDTEAM_HIDDEN_NAMES


def corpus_params():
    return [data.corpus_param(i, sql, KNOWN_BUGS, (expect, sql, protocol), (protocol,))
            for i, (expect, sql) in enumerate(CORPUS) for protocol in ("simple", "extended")]


@pytest.fixture(scope="module")
def gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres)


@pytest.fixture(scope="module")
def session(gw):
    opened = {}

    def get(user, protocol):
        key = (user, protocol)
        if key not in opened:
            dbname = "isoa" if user in ("alice", "admin") else "isob"
            opened[key] = data.Raw(gw.conninfo(user, dbname))
        opened[key].reset()
        return opened[key]
    yield get
    for raw in opened.values():
        raw.close()


def assert_clean(outcome, sql, extra=()):
    data.assert_clean(outcome, sql, SECRETS, HIDDEN_NAMES, extra)


assert_still_a = data.assert_still_a


@pytest.mark.parametrize("expect, sql, protocol", corpus_params())
def test_redteam_statement(session, expect, sql, protocol):
    raw = session("alice", protocol)
    outcome = raw.run(protocol, sql)
    assert_clean(outcome, sql)
    multi = (protocol == "extended" and outcome.sqlstate == "42601"
             and "multiple commands" in outcome.errors[0][1])
    if expect in ("ok", "oracle") and not multi:
        assert not outcome.errors, f"expected success, got {outcome.errors}"
    elif expect == "err":
        assert outcome.errors, f"expected a refusal, got rows {outcome.rows[:5]}"
    elif expect == "null" and not multi:
        assert not outcome.errors, outcome.errors
        assert all(v is None for row in outcome.rows for v in row), outcome.rows[:5]
    elif re.fullmatch(r"[0-9A-Z]{5}", expect) and not multi:
        assert outcome.sqlstate == expect, f"expected {expect}, got {outcome.errors}"
    assert_still_a(raw, protocol)


def test_corpus_is_substantial():
    assert len(CORPUS) >= 300
    assert sum(1 for e, _ in CORPUS if e == "oracle") >= 100


def test_oracle_lines_are_real(postgres):
    data.check_oracle_lines(postgres, CORPUS)


# --------------------------------------------------------------------------
# A hidden object answers exactly as a missing one (reg* input, to_reg*)
# --------------------------------------------------------------------------

REG_OPERATOR = ("regoper/regoperator input and to_regoper/to_regoperator resolve "
                "operators of hidden schemas (policy_object.c checks the reg* types of "
                "relations, types, functions and schemas, not operators)")
REG_SCHEMA = ("regconfig/regdictionary/regcollation input of a hidden schema says "
              "42704 (object missing in an existing schema), of a missing one 3F000: "
              "the hidden schema's existence shows")
SAME = [
    ("SELECT '{X}.=(integer,text)'::regoperator", "trap", None),
    ("SELECT '{X}.~~'::regoper", "trap", None),
    ("SELECT to_regoperator('{X}.<(integer,text)')", "trap", None),
    ("SELECT to_regoper('{X}.||')", "trap", None),
    ("SELECT '{X}.english'::regconfig", "hush", None),
    ("SELECT '{X}.simple'::regdictionary", "hush", None),
    ("SELECT '{X}.\"C\"'::regcollation", "trap", None),
    # held: the same answer today
    ("SELECT '{X}'::regnamespace", "hush", None),
    ("SELECT '{X}.keyring'::regclass", "hush", None),
    ("SELECT '{X}.keyring'::regtype", "hush", None),
    ("SELECT '{X}.spill'::regproc", "trap", None),
    ("SELECT '{X}.spill()'::regprocedure", "trap", None),
    ("SELECT to_regcollation('{X}.\"C\"')", "hush", None),
    ("SELECT has_schema_privilege('{X}', 'usage')", "trap", None),
    ("SELECT to_regclass('{X}')", "audit_secrets", None),
    ("SELECT has_table_privilege('{X}', 'select')", "staff_salaries", None),
    ("SELECT pg_get_viewdef('{X}')", "secret_view", None),
    ("SELECT '{X}'::regproc", "leak_fn", None),
    ("SELECT '{X}'::regtype", "_audit_secrets", None),
    ("SELECT * FROM {X}", "ticket_seq", None),
    ("SELECT {X} FROM customers", "internal_rating", None),
    ("SELECT count(*) FROM customers c JOIN (SELECT 1 AS {X}) x USING ({X})",
     "internal_rating", None),
]


def same_params():
    out = []
    for i, (sql, hidden, reason) in enumerate(SAME):
        for protocol in ("simple", "extended"):
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(sql, hidden, protocol, marks=marks,
                                    id=f"{i:02d} {sql[:50]}-{protocol}"))
    return out


@pytest.mark.parametrize("sql, hidden, protocol", same_params())
def test_hidden_answers_as_missing(session, sql, hidden, protocol):
    raw = session("alice", protocol)
    missing = "zz_missing_" + hidden.lstrip("_")
    got = [raw.run(protocol, sql.replace("{X}", name)) for name in (hidden, missing)]
    raw.reset()

    def norm(o, name):
        return (o.sqlstate, [e[2].replace(name, "<X>") for e in o.errors],
                [tuple(None if v is None else v.replace(name, "<X>") for v in r)
                 for r in o.rows])
    assert norm(got[0], hidden) == norm(got[1], missing)
    assert_still_a(raw, protocol)


# --------------------------------------------------------------------------
# Objects of kinds whose catalogs have no visible set, in a schema A cannot
# see (made here, dropped afterwards; nothing in other modules reads them)
# --------------------------------------------------------------------------

HIDDEN_SCHEMA_SQL = """
CREATE SCHEMA rt_hidden;
CREATE COLLATION rt_hidden.rt_coll FROM "C";
CREATE TEXT SEARCH DICTIONARY rt_hidden.rt_dict (TEMPLATE = simple);
CREATE TEXT SEARCH CONFIGURATION rt_hidden.rt_cfg (COPY = simple);
CREATE OPERATOR FAMILY rt_hidden.rt_fam USING btree;
CREATE CONVERSION rt_hidden.rt_conv FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;
CREATE FUNCTION rt_hidden.rt_evt_fn() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
CREATE EVENT TRIGGER rt_evt ON ddl_command_start EXECUTE FUNCTION rt_hidden.rt_evt_fn();
"""
RT_NAMES = ("rt_hidden", "rt_coll", "rt_dict", "rt_cfg", "rt_fam", "rt_conv", "rt_evt")
UNFILTERED = ("the catalog has no visible set (policy_catalog.c: PG(\"{}\", NULL)): rows "
              "of objects in hidden schemas pass through with their names")
OBJECT_KINDS = [
    ("SELECT string_agg(collname, ',') FROM pg_collation WHERE oid > 16384", None),
    ("SELECT string_agg(dictname, ',') FROM pg_ts_dict WHERE oid > 16384", None),
    ("SELECT string_agg(cfgname, ',') FROM pg_ts_config WHERE oid > 16384", None),
    ("SELECT string_agg(opfname, ',') FROM pg_opfamily WHERE oid > 16384", None),
    ("SELECT string_agg(conname, ',') FROM pg_conversion WHERE oid > 16384", None),
    ("SELECT string_agg(evtname || ' ' || evtfoid::regproc::text, ',') FROM pg_event_trigger",
     None),
    ("SELECT string_agg(collation_name, ',') FROM information_schema.collations", None),
    ("SELECT 'rt_hidden.rt_cfg'::regconfig", None),
    ("SELECT to_regcollation('rt_hidden.rt_coll')", None),
    ("SELECT string_agg(nspname, ',') FROM pg_namespace", None),
]


@pytest.fixture(scope="module")
def hidden_schema(postgres, gw):
    data.ensure_databases(postgres)
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute("DROP EVENT TRIGGER IF EXISTS rt_evt")
        conn.execute("DROP SCHEMA IF EXISTS rt_hidden CASCADE")
        conn.execute(HIDDEN_SCHEMA_SQL)
    yield
    with postgres.connect(data.SHARED_DB) as conn:
        conn.execute("DROP EVENT TRIGGER IF EXISTS rt_evt")
        conn.execute("DROP SCHEMA IF EXISTS rt_hidden CASCADE")


def kind_params():
    out = []
    for i, (sql, catalog) in enumerate(OBJECT_KINDS):
        for protocol in ("simple", "extended"):
            reason = REG_SCHEMA + (" (here 42501: the backend role has no USAGE on the "
                                   "schema)") if catalog == "REG_SCHEMA" else (
                UNFILTERED.format(catalog) if catalog else None)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(sql, protocol, marks=marks,
                                    id=f"{i:02d} {sql[:50]}-{protocol}"))
    return out


@pytest.mark.parametrize("sql, protocol", kind_params())
def test_objects_of_hidden_schemas_never_show(session, hidden_schema, sql, protocol):
    raw = session("alice", protocol)
    got = raw.run(protocol, sql)
    leaked = [n for n in RT_NAMES if n in got.everything() and n not in sql]
    assert not leaked, f"{leaked} reached tenant A:\n{got.everything()[:2000]}"
    if "rt_hidden.rt_cfg" in sql:
        missing = raw.run(protocol, sql.replace("rt_hidden", "zz_missing_nsp"))
        assert (got.sqlstate, got.rows) == (missing.sqlstate, missing.rows), (
            got.errors, missing.errors)
    assert_still_a(raw, protocol)


# --------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------


def test_hash_mask_is_not_a_plain_digest(session):
    """The hash mask is keyed (mask_key): hashing a guess of the value does
    not reproduce it, so a dictionary of guessable values inverts nothing."""
    raw = session("alice", "simple")
    got = raw.simple("SELECT loyalty_code FROM customers WHERE id = 1")
    real = data.customers(data.TENANT_A)[0][6]  # the masked loyalty code
    assert got.rows and got.rows[0][0] != hashlib.md5(real.encode()).hexdigest()
    assert got.rows[0][0] == data.md5_text(real)  # keyed with the gateway's mask_key


def test_hash_mask_key_defaults_to_a_random_one(postgres, pgwarden):
    """Without mask_key the key is drawn at start: still not a plain digest,
    equal values still hash equal (GROUP BY, joins), and a restart changes it."""
    settings = {k: v for k, v in data.GATEWAY_SETTINGS.items() if k != "mask_key"}
    seen = []
    for _ in range(2):
        gw = data.start_gateway(pgwarden, postgres, **{**settings, "mask_key": ""})
        a = data.Raw(gw.conninfo("alice", "isoa"))
        try:
            got = a.simple("SELECT loyalty_code, count(*) OVER (PARTITION BY loyalty_code) "
                           "FROM customers WHERE id = 1")
            assert not got.errors, got.errors
            seen.append(got.rows[0][0])
        finally:
            a.close()
        gw.stop()
    real = data.customers(data.TENANT_A)[0][6]
    assert hashlib.md5(real.encode()).hexdigest() not in seen
    assert data.md5_text(real) not in seen
    assert seen[0] != seen[1]


def test_partial_mask_hides_short_values_whole(session):
    """partial shows the last 4 characters only of values of 8 or more."""
    raw = session("alice", "simple")
    got = raw.simple("SELECT pg_catalog.length(email), email FROM customers "
                     "WHERE id = 1")
    assert not got.errors, got.errors
    n, shown = int(got.rows[0][0]), got.rows[0][1]
    assert len(shown) == n and shown.startswith("x" * max(n - 4, 0))


# --------------------------------------------------------------------------
# Hidden objects: a hidden ('hide' mask) column is counted in pg_class
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_relnatts_counts_only_visible_columns(session, protocol):
    raw = session("alice", protocol)
    got = raw.run(protocol, "SELECT c.relnatts, (SELECT count(*) FROM pg_attribute a WHERE "
                  "a.attrelid = c.oid AND a.attnum > 0) FROM pg_class c WHERE c.relname = "
                  "'customers'")
    assert not got.errors, got.errors
    natts, visible = got.rows[0]
    assert natts == visible


# --------------------------------------------------------------------------
# The result cache: one tenant's cached answer never reaches another
# --------------------------------------------------------------------------

CACHED = [
    "SELECT name, email FROM customers ORDER BY id LIMIT 3",
    "SELECT count(*), min(name) FROM customers",
    "SELECT relname FROM pg_class WHERE relkind = 'r' ORDER BY 1",
    "SELECT current_database(), current_setting('search_path')",
]


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("sql", CACHED)
def test_b_cached_answer_never_served_to_a(session, protocol, sql):
    """B runs it twice (the second is a hit), then A the same text: A gets A's."""
    bob = session("bob", protocol)
    for _ in range(2):
        assert not bob.run(protocol, sql).errors
    got = session("alice", protocol).run(protocol, sql)
    assert not got.errors, got.errors
    assert_clean(got, sql, extra=("isob",))


def test_b_cached_answer_with_typed_parameters_never_served_to_a(gw):
    """The extended protocol with parameter types in Parse, B first."""
    sql = "SELECT name FROM customers WHERE id > $1 ORDER BY id LIMIT 3"
    bob = data.Wire(gw.port, user="bob", dbname="isob", password="bob-secret")
    alice = data.Wire(gw.port)
    try:
        for _ in range(2):
            bob.run(sql, ["0"], [23])
        got = alice.run(sql, ["0"], [23])
    finally:
        bob.close()
        alice.close()
    text = repr(got)
    assert not [s for s in SECRETS if s in text], text[:2000]


def _big(i):
    return (f"SELECT id, status, region, placed_on, amount FROM orders WHERE id > {i} "
            f"ORDER BY id LIMIT 150")


def test_b_activity_never_evicts_a_entries(postgres, pgwarden):
    data.ensure_databases(postgres)
    gw = pgwarden(settings={**data.GATEWAY_SETTINGS}, users=data.GATEWAY_USERS,
                  extra=data.gateway_extra(postgres)
                  + "\n[cache]\nmode = memory\nmax_memory = 400kB\nttl = 300s\n")
    alice = data.Raw(gw.conninfo("alice", "isoa"))
    bob = data.Raw(gw.conninfo("bob", "isob"))
    try:
        for i in range(40):  # prime
            assert not alice.simple(_big(20000 + i)).errors
        for i in range(60):  # B's activity
            assert not bob.simple(_big(50000 + i)).errors
        for i in range(40):  # probe
            assert not alice.simple(_big(20000 + i)).errors
    finally:
        alice.close()
        bob.close()
    probes = {_big(20000 + i) for i in range(40)}

    def outcomes():
        recs = [r for r in askutil.audit_records(gw.dir / "audit.jsonl")
                if r.get("sql") in probes and r.get("user") == "alice" and "cache" in r]
        return recs if len(recs) == 80 else None
    recs = wait_until(outcomes, 10, "the audit records of the probes")
    assert [r["cache"] for r in recs[40:]] == ["hit"] * 40


# --------------------------------------------------------------------------
# ASK: the translation cache
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ask_gw(postgres, pgwarden):
    llm = askutil.FakeLLM()
    data.ensure_databases(postgres)
    gw = pgwarden(settings={**data.GATEWAY_SETTINGS}, users=data.GATEWAY_USERS,
                  extra=data.gateway_extra(postgres) + askutil.llm_section(llm))
    yield gw, llm
    llm.stop()


def test_ask_translation_is_not_shared_between_tenants(ask_gw):
    gw, llm = ask_gw
    question = "which city do most of our customers live in"
    # The model answers B with a value from B's data, A with A's.
    b_sql = "SELECT count(*) AS n FROM customers WHERE city = '" + data.MARKER + "ville'"
    llm.script([{"match": askutil.exact(question), "replies": [
        askutil.sql_reply(b_sql),
        askutil.sql_reply("SELECT count(*) AS n FROM customers WHERE city = 'Lyon'")]}])
    bob = data.Raw(gw.conninfo("bob", "isob"))
    alice = data.Raw(gw.conninfo("alice", "isoa"))
    try:
        assert not bob.simple(f"ASK {question}").errors
        calls = llm.calls()
        got = alice.simple(f"ASK {question}")
    finally:
        bob.close()
        alice.close()
    assert not got.errors, got.errors
    assert llm.calls() > calls, "A's question was answered without asking the model"
    assert not got.leaks(SECRETS), got.everything()


ASK_PAIRS = [
    ("SELECT * FROM {X}", "audit_secrets", "zz_missing_rel"),
    ("SELECT * FROM {X}", "staff_salaries", "zz_missing_rel"),
    ("SELECT * FROM {X}.keyring", "hush", "zz_missing_nsp"),
    ("SELECT {X} FROM customers", "internal_rating", "zz_missing_col"),
    ("SELECT {X}()", "leak_fn", "zz_missing_fn"),
    ("SELECT 1 FROM customers c WHERE c.id = 'trap.=(integer,text)'::regoperator::oid::int",
     None, None),
]


@pytest.mark.parametrize("sql, hidden, missing", ASK_PAIRS, ids=[p[0][:40] for p in ASK_PAIRS])
def test_ask_feedback_treats_hidden_as_missing(ask_gw, sql, hidden, missing):
    """What the model is told after a failure, and what the client finally
    gets, is the same for a hidden name and a missing one."""
    gw, llm = ask_gw
    seen = []
    for name in ([hidden, missing] if hidden else [None]):
        text = sql.replace("{X}", name) if name else sql
        question = f"red team probe {len(seen)} {sql[:20]}"
        llm.script([{"match": askutil.exact(question),
                     "replies": [askutil.sql_reply(text)] * 3}])
        alice = data.Raw(gw.conninfo("alice", "isoa"))
        try:
            got = alice.simple(f"ASK {question}")
            assert_still_a(alice)
        finally:
            alice.close()
        told = "\n".join(m for e in llm.log()[1:] for m in askutil.user_messages(e)[-1:])
        assert_clean(got, text)  # the model wrote text: its echo is no leak
        for secret in HIDDEN_NAMES + SECRETS:
            assert secret not in told, f"{secret} told to the model: {told[:500]}"
        norm = (lambda v: v.replace(name, "<X>")) if name else (lambda v: v)
        seen.append((norm(told), [norm(e[2]) for e in got.errors]))
    if hidden:
        assert seen[0] == seen[1]


# --------------------------------------------------------------------------
# Availability: what one client can make the gateway hold
# --------------------------------------------------------------------------


def _send_big_parses(session, count, size, prefix):
    literal = "x" * size  # larger than the rewrite cache stores
    for i in range(count):
        session._send(b"P", f"{prefix}{i}\0SELECT {i}, '{literal}'\0".encode()
                      + struct.pack("!H", 0))
    session._send(b"S", b"")
    errors = []
    while True:
        kind, payload = session.read_message()
        if kind == b"E":
            errors.append(dict((f[:1], f[1:]) for f in payload.decode().split("\0") if f))
        if kind == b"Z":
            return errors


@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_prepared_statements_cannot_grow_the_gateway_without_bound(postgres, pgwarden, mode):
    """The red team's finding: one client's Parses grew the one process
    that serves every tenant by ~1.5x what it sent. max_prepared_memory
    bounds what a client's statements hold: in session mode the rest run
    uncached, in transaction mode (where pgwarden must keep them to prepare
    them again elsewhere) the Parse past it is refused with 53200."""
    gw = data.start_gateway(pgwarden, postgres, pool_mode=mode, max_prepared_memory="2MB")
    session = pgwire.Session("127.0.0.1", gw.port)
    session.startup("alice", "isoa", "alice-secret")
    try:
        # Four rounds of 30 Parses of 300 kB (9 MB each). The first round
        # leaves the allocator's arenas grown (the messages pass through
        # the buffers and the policy whether or not they are kept); without
        # the bound every round adds ~1.5x what it sent (+18 MB a round).
        grown = []
        before = rss_kb(gw.pid)
        for r in range(4):
            errors = _send_big_parses(session, 30, 300_000, f"rt_big{r}_")
            grown.append((rss_kb(gw.pid) - before) / 1024)
            if mode == "transaction" and r == 0:
                assert errors and errors[0]["C"] == "53200", errors
                assert "max_prepared_memory" in errors[0]["M"]
        # the connection still works
        session._send(b"Q", b"SELECT 1\0")
        kinds = []
        while not kinds or kinds[-1] != b"Z":
            kinds.append(session.read_message()[0])
        assert b"E" not in kinds and b"D" in kinds
    finally:
        session.close()
    other = data.Raw(gw.conninfo("bob", "isob"))
    try:
        assert other.simple("SELECT 1").rows == [("1",)]
    finally:
        other.close()
    assert grown[3] - grown[1] < 6, f"RSS by round (MB): {grown}: still growing"


# --------------------------------------------------------------------------
# Transaction pooling: nothing of B's session state reaches A
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def txn_gw(postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres, pool_mode="transaction", pool_size="2")


def test_txn_mode_b_state_never_reaches_a(txn_gw):
    bob = data.Raw(txn_gw.conninfo("bob", "isob"))
    alice = data.Raw(txn_gw.conninfo("alice", "isoa"))
    try:
        assert not bob.simple("PREPARE rt_bobs AS SELECT name FROM customers LIMIT 2").errors
        assert not bob.simple("SET TimeZone = 'Asia/Tokyo'").errors
        assert not bob.simple("BEGIN").errors
        assert not bob.simple("DECLARE rt_bc CURSOR WITH HOLD FOR SELECT name FROM "
                              "customers").errors
        assert not bob.simple("COMMIT").errors
        got = [alice.simple("EXECUTE rt_bobs"), alice.simple("FETCH 2 FROM rt_bc"),
               alice.simple("SELECT name, statement FROM pg_prepared_statements"),
               alice.simple("SELECT name, statement FROM pg_cursors"),
               alice.simple("SELECT current_setting('TimeZone')")]
        for g in got:
            assert not g.leaks(SECRETS), g.everything()
        assert got[0].sqlstate == "26000" and got[1].sqlstate == "34000"
        assert got[4].rows != [("Asia/Tokyo",)]
        assert_still_a(alice)
    finally:
        bob.close()
        alice.close()
