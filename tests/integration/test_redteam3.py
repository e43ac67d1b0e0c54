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

import re
from pathlib import Path

import psycopg
import pytest

import isolation_data as data

CORPUS_PATH = Path(__file__).with_name("sql") / "hostile_redteam3.sql"
CORPUS = data.load_corpus(CORPUS_PATH)

SECRETS = data.SECRETS + (data.TENANT_B,)
HIDDEN_NAMES = data.HIDDEN_NAMES + ("hush", "trap.", "leak_fn", "eq_int_text",
                                    "eq_rows", "ticket_seq")

# Corpus statements that leak today (strict xfail, reason = the hole).
KNOWN_BUGS = {}


def hidden_names_not_in(sql):
    lowered = sql.lower()
    return tuple(n for n in HIDDEN_NAMES if n.lower() not in lowered)


def short(sql):
    return re.sub(r"\s+", " ", sql)[:60]


def corpus_params(protocols=("simple", "extended")):
    out = []
    for i, (expect, sql) in enumerate(CORPUS):
        for protocol in protocols:
            marks = []
            reason = KNOWN_BUGS.get(sql)
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            out.append(pytest.param(expect, sql, protocol, marks=marks,
                                    id=f"{i:03d} {short(sql)}-{protocol}"))
    return out


@pytest.fixture(scope="module", params=["session", "transaction"])
def gw(request, postgres, pgwarden):
    return data.start_gateway(pgwarden, postgres, pool_mode=request.param, pool_size="2")


@pytest.fixture(scope="module")
def session(gw):
    opened = {}

    def get(protocol):
        if protocol not in opened:
            opened[protocol] = data.Raw(gw.conninfo("alice", "isoa"))
        opened[protocol].reset()
        return opened[protocol]
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
    leaked = outcome.leaks(SECRETS + hidden_names_not_in(sql))
    assert not leaked, f"{leaked} reached tenant A:\n{outcome.everything()[:2000]}"


def assert_still_a(raw, protocol):
    raw.reset()
    check = raw.run(protocol, "SELECT count(*), min(tenant_id), max(tenant_id) FROM customers")
    assert not check.errors, f"connection unusable afterwards: {check.errors}"
    assert check.rows == [(str(data.N_CUSTOMERS), data.TENANT_A, data.TENANT_A)]
    assert raw.ok


@pytest.mark.parametrize("expect, sql, protocol", corpus_params())
def test_redteam3_statement(session, reference, expect, sql, protocol):
    raw = session(protocol)
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
    assert sum(1 for e, _ in CORPUS if e == "oracle") >= 100
    assert sum(1 for e, _ in CORPUS if e == "same") >= 100


def test_oracle_lines_are_real(postgres):
    """An 'oracle' line is only a test if its predicate really fires: it must
    fail on isoshared read directly and succeed on isoref_a."""
    data.ensure_databases(postgres)
    vacuous, broken = [], []
    with postgres.connect(data.SHARED_DB) as shared, postgres.connect(data.REF_DB) as ref:
        for expect, sql in CORPUS:
            if expect != "oracle":
                continue
            for conn, want_error, bad in ((shared, True, vacuous), (ref, False, broken)):
                try:
                    conn.execute(sql).fetchall()
                    failed = False
                except psycopg.Error:
                    failed = True
                conn.rollback()
                if failed != want_error:
                    bad.append(sql)
    assert not vacuous, "never fire on the shared database:\n" + "\n".join(vacuous)
    assert not broken, "fail on tenant A's own data:\n" + "\n".join(broken)
