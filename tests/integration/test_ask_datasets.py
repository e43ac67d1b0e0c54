"""ASK end to end on real data: the defog-data databases and sql-eval's questions.

The eleven databases of /work/shared/datasets/defog-data are loaded into the
test PostgreSQL, each its own tenant with default_access = allow (the policy
rewrites every relation but hides nothing). The stand-in LLM is scripted with
one rule per question, answering that question's gold SQL. Every question of
questions_gen_postgres, instruct_basic_postgres and instruct_advanced_postgres
(idk.csv has no gold SQL) is then asked through pgwarden, and its rows must
equal those of the gold SQL run directly as the superuser.

A question whose gold SQL fails directly is skipped. One that works directly
but not through pgwarden is a pgwarden bug or a policy refusal: they are all
printed, grouped by cause, and at least 95% of the questions must pass.
"""

import csv
import math
import os
import re
import subprocess
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from askutil import FakeLLM, dollar_quote, exact, llm_section, sql_reply
from conftest import PG_BINDIR

DATASETS = Path(os.environ.get("PGW_DATASETS", "/work/shared/datasets"))
DEFOG = DATASETS / "defog-data"
SQL_EVAL = DATASETS / "sql-eval"
QUESTION_FILES = ["questions_gen_postgres.csv", "instruct_basic_postgres.csv",
                  "instruct_advanced_postgres.csv"]
PASS_SHARE = 0.95

pytestmark = pytest.mark.skipif(not (DEFOG.is_dir() and SQL_EVAL.is_dir()),
                                reason=f"datasets not found under {DATASETS}")


# --------------------------------------------------------------------------
# Gold SQL notation
# --------------------------------------------------------------------------


def split_outside_quotes(sql, sep):
    """sql split at sep where sep is not inside a '...' literal or "..." name."""
    parts, cur, quote = [], [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def first_gold_query(cell):
    """The first acceptable query of a gold cell, its {a,b} choices resolved.

    Choices outside quoted text: "{a, b}" becomes its first choice a, and
    "{}" (GROUP BY {}) repeats the choices made so far, in order."""
    first = next(p for p in split_outside_quotes(cell, ";") if p.strip())
    out, chosen, i, quote = [], [], 0, None
    while i < len(first):
        ch = first[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            end = first.index("}", i)
            inner = first[i + 1:end]
            if inner.strip():
                choice = inner.split(",")[0].strip()
                chosen.append(choice)
                out.append(choice)
            else:
                out.append(", ".join(chosen))
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out).strip()


def load_questions():
    questions = []
    for name in QUESTION_FILES:
        with open(SQL_EVAL / name, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                questions.append({
                    "id": f"{name}:{n}",
                    "db": row["db_name"],
                    "question": row["question"].strip(),
                    "gold": first_gold_query(row["query"]),
                })
    return questions


# --------------------------------------------------------------------------
# Comparing results
# --------------------------------------------------------------------------


def canonical(value):
    """A value comparable across runs: numbers rounded to 6 significant digits
    (float sums may add up in another order), everything else as is."""
    if isinstance(value, (float, Decimal)) and not isinstance(value, bool):
        f = float(value)
        if math.isnan(f) or math.isinf(f) or f == 0:
            return f
        return round(f, 5 - int(math.floor(math.log10(abs(f)))))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    return value


def canonical_rows(rows):
    return [tuple(canonical(v) for v in r) for r in rows]


def multiset(rows):
    return Counter(repr(r) for r in rows)


def has_order_by(sql):
    return re.search(r"\border\s+by\b", sql, re.I) is not None


def compare(gold_rows, ask_rows, ordered):
    """None when equal, else a short reason."""
    g, a = canonical_rows(gold_rows), canonical_rows(ask_rows)
    if multiset(g) != multiset(a):
        return f"different rows: gold {len(g)} rows, ASK {len(a)} rows; " \
               f"first gold {g[:2]!r}, first ASK {a[:2]!r}"
    if ordered and g != a:
        return "same rows, different order"
    return None


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


def databases():
    return sorted(p.name for p in DEFOG.iterdir() if (p / f"{p.name}.sql").is_file())


@pytest.fixture(scope="module")
def defog(postgres):
    """The defog databases, loaded once; reader may read everything."""
    names = databases()
    with postgres.connect() as su:
        for db in names:
            su.execute(f"DROP DATABASE IF EXISTS {db}")
            su.execute(f"CREATE DATABASE {db}")

    def load(db):
        subprocess.run(
            [str(PG_BINDIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres", "-d", db,
             "-f", str(DEFOG / db / f"{db}.sql")],
            check=True, capture_output=True, text=True)
        with postgres.connect(db) as conn:
            for (schema,) in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                    "AND nspname <> 'information_schema'").fetchall():
                conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO reader')
                conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO reader')

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load, names))
    return names


@pytest.fixture(scope="module")
def questions(defog):
    qs = [q for q in load_questions() if q["db"] in defog]
    assert len(qs) >= 300, f"only {len(qs)} questions found"
    return qs


@pytest.fixture(scope="module")
def llm(questions):
    fake = FakeLLM()
    fake.script([{"match": exact(q["question"]), "reply": sql_reply(q["gold"])}
                 for q in questions])
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def gw(pgwarden, postgres, defog, llm):
    tenants = "".join(f"\n[tenant.{db}]\nbackend = {postgres.conninfo(db)}\n" for db in defog)
    return pgwarden(
        settings={"default_access": "allow", "pool_size": "4", "statement_timeout": "60s"},
        users={"analyst": ", ".join(defog)},
        passwords={"analyst": "analyst-secret"},
        # One attempt: the stand-in answers the gold SQL or nothing, so a
        # retry could only hide the first error.
        extra=tenants + llm_section(llm, max_attempts="1", timeout="30s"))


# --------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------


def run_database(postgres, gw, db, qs):
    """Every question of one database: (question, outcome, detail) triples,
    outcome one of pass / skip / fail."""
    results = []
    with postgres.connect(db) as direct, gw.connect("analyst", db, password="analyst-secret") \
            as through:
        for q in qs:
            try:
                cur = direct.execute(q["gold"])
                gold_rows = cur.fetchall() if cur.description else []
            except psycopg.Error as e:
                results.append((q, "skip", f"gold SQL fails directly: {e.sqlstate} "
                                           f"{str(e).splitlines()[0]}"))
                continue
            try:
                cur = through.execute(f"ASK {dollar_quote(q['question'])}")
                ask_rows = cur.fetchall() if cur.description else []
            except psycopg.Error as e:
                results.append((q, "fail", f"{e.sqlstate}: {str(e).splitlines()[0]}"))
                continue
            why = compare(gold_rows, ask_rows, has_order_by(q["gold"]))
            results.append((q, "fail" if why else "pass", why))
    return results


def failure_category(why):
    """An error's SQLSTATE and the start of its message; or the kind of mismatch."""
    if re.match(r"[0-9A-Z]{5}:", why):
        return why[:90]
    return why.split(":")[0]


@pytest.mark.timeout(240)
def test_every_gold_query_asked_through_pgwarden_returns_the_gold_rows(postgres, gw, llm,
                                                                        questions):
    by_db = defaultdict(list)
    for q in questions:
        by_db[q["db"]].append(q)
    start = time.monotonic()
    with ThreadPoolExecutor(len(by_db)) as pool:
        per_db = list(pool.map(lambda db: run_database(postgres, gw, db, by_db[db]),
                               sorted(by_db)))
    elapsed = time.monotonic() - start
    results = [r for rs in per_db for r in rs]

    counts = Counter(outcome for _, outcome, _ in results)
    compared = counts["pass"] + counts["fail"]
    failures = [(q, why) for q, outcome, why in results if outcome == "fail"]
    skips = [(q, why) for q, outcome, why in results if outcome == "skip"]
    categories = Counter(failure_category(why) for _, why in failures)

    print(f"\nASK over defog-data: {counts['pass']}/{compared} pass, {counts['fail']} fail, "
          f"{counts['skip']} skipped (gold SQL fails directly), {elapsed:.1f}s, "
          f"{llm.calls()} model calls")
    for q, why in skips:
        print(f"  skip {q['id']} [{q['db']}]: {why}")
    for cat, n in categories.most_common():
        print(f"  failure category ({n}): {cat}")
    for q, why in failures:
        print(f"  FAIL {q['id']} [{q['db']}] {q['question'][:80]!r}\n"
              f"       {why}\n       gold: {q['gold'][:300]}")

    assert compared >= 0.9 * len(questions), \
        f"only {compared} of {len(questions)} questions could be compared"
    assert counts["pass"] >= PASS_SHARE * compared, \
        f"{counts['fail']} of {compared} questions fail through pgwarden (see the list above)"
