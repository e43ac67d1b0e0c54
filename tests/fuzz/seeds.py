#!/usr/bin/env python3
"""seeds.py -- (re)write the checked-in seed corpora of tests/fuzz/corpus/.

Run from anywhere: `python3 tests/fuzz/seeds.py`. Every seed is small and
written by this script, so the corpus can be reviewed and regenerated; the
fuzzers grow their own working corpora elsewhere (scripts/fuzz.sh keeps them
under FUZZ_DIR), never in the tree.

Seeds per target:
  codec     one well-formed message of each kind the codec parses (first byte
            picks the parser, see fuzz_codec.c), and a few broken ones
  auth      startup packet / SASLInitialResponse / client-final exchanges,
            "\\n--\\n" between them (see fuzz_auth.c): a correct login, a
            wrong one, unknown and md5 users, channel binding, no p=
  userlist  auth_file texts: plain, md5, SCRAM, quoting, comments
  config    the shipped and demo configs and a full one with table policies
  policy    the policy unit test's shapes, the hostile corpus's statements,
            and issue 7 item 8's deep and wide statements: a 6,000-term sum,
            4,500 nested NOTs, an 8,000-argument call, a 20,000-element IN
            list, deep parentheses and subqueries
  ask       model answers (fenced, bare, refusals, prose), ASK statements,
            backend error texts
"""

import hashlib
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SEP = b"\n--\n"


def cstr(s):
    return s.encode() + b"\0"


def startup(**params):
    body = struct.pack("!I", 196608)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    return body + b"\0"


def sasl_initial(data, mech="SCRAM-SHA-256"):
    if data is None:
        return cstr(mech) + struct.pack("!i", -1)
    return cstr(mech) + struct.pack("!I", len(data)) + data


def codec_seeds():
    s = {}
    s["startup"] = b"s" + startup(user="alice", database="acme", application_name="psql")
    s["startup_options"] = b"s" + startup(user="carol", database="globex",
                                          options="-c search_path=public")
    s["ssl_request"] = b"s" + struct.pack("!I", 80877103)
    s["gssenc_request"] = b"s" + struct.pack("!I", 80877104)
    s["cancel"] = b"s" + struct.pack("!III", 80877102, 4242, 0x12345678)
    s["startup_dup_user"] = b"s" + struct.pack("!I", 196608) + cstr("user") + cstr("a") + \
        cstr("user") + cstr("b") + b"\0"
    s["parse"] = b"P" + cstr("s1") + cstr("SELECT $1::int, $2") + struct.pack("!HII", 2, 23, 0)
    s["parse_unnamed"] = b"P" + cstr("") + cstr("SELECT 1") + struct.pack("!H", 0)
    s["parse_short_types"] = b"P" + cstr("") + cstr("SELECT $1") + struct.pack("!HH", 3, 23)
    err = b"".join(c.encode() + cstr(v) for c, v in
                   [("S", "ERROR"), ("V", "ERROR"), ("C", "42P01"),
                    ("M", 'relation "internal_notes" does not exist'), ("P", "15"),
                    ("F", "parse_relation.c"), ("L", "1392"), ("R", "parserOpenTable")])
    s["error"] = b"E" + err + b"\0"
    s["notice"] = b"N" + b"SNOTICE\0CXX000\0Mhello\0Dsome detail\0Hsome hint\0\0"
    s["error_truncated"] = b"E" + b"SERROR\0C42"
    s["parameter_status"] = b"S" + cstr("server_version") + cstr("15.4")
    s["ready_idle"] = b"ZI"
    s["ready_tx"] = b"ZT"
    s["ready_bad"] = b"ZX"
    s["data_row"] = b"D" + struct.pack("!H", 3) + struct.pack("!i", 5) + b"hello" + \
        struct.pack("!i", -1) + struct.pack("!i", 0)
    s["data_row_overlong"] = b"D" + struct.pack("!H", 1) + struct.pack("!i", 100) + b"short"
    s["query"] = b"Q" + cstr("SELECT 1")
    s["password"] = b"p" + cstr("md5" + "0" * 32)
    s["sasl_initial"] = b"p" + sasl_initial(b"n,,n=,r=abcdef")
    s["sasl_initial_none"] = b"p" + sasl_initial(None)
    s["describe_portal"] = b"d" + b"P" + cstr("p1")
    s["close_statement"] = b"C" + b"S" + cstr("s1")
    s["header_huge"] = b"Q" + struct.pack("!I", 0xFFFFFFF0)
    s["header_short"] = b"Q" + struct.pack("!I", 3)
    return s


def auth_seeds():
    nonce = "clientnonce"
    first = f"n,,n=,r={nonce}".encode()
    final = f"c=biws,r={nonce}fuzzservernonce,p=PROOF".encode()
    s = {}
    s["login_ok"] = startup(user="alice", database="acme") + SEP + sasl_initial(first) + \
        SEP + final
    s["login_wrong_proof"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(first) + SEP + \
        f"c=biws,r={nonce}fuzzservernonce,p={'A' * 43}=".encode()
    s["login_unknown_user"] = startup(user="mallory", database="acme") + SEP + \
        sasl_initial(first) + SEP + final
    s["login_md5_user"] = startup(user="carol", database="acme") + SEP + \
        sasl_initial(first) + SEP + final
    s["login_y_flag"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(f"y,,n=,r={nonce}".encode()) + SEP + \
        f"c=eSws,r={nonce}fuzzservernonce,p=PROOF".encode()
    s["channel_binding"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(f"p=tls-server-end-point,,n=,r={nonce}".encode(),
                     "SCRAM-SHA-256-PLUS") + SEP + final
    # issue 14 item 7: a final message without p= (reported as a nonce mismatch today)
    s["final_without_proof"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(first) + SEP + f"c=biws,r={nonce}fuzzservernonce".encode()
    s["final_extension"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(first) + SEP + f"c=biws,r={nonce}fuzzservernonce,x=ext,p=PROOF".encode()
    s["authzid"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(f"n,a=bob,n=,r={nonce}".encode()) + SEP + final
    s["mandatory_ext"] = startup(user="alice", database="acme") + SEP + \
        sasl_initial(f"n,,m=x,n=,r={nonce}".encode()) + SEP + final
    s["no_initial_data"] = startup(user="alice", database="acme") + SEP + sasl_initial(None)
    s["ssl_request"] = struct.pack("!I", 80877103)
    s["cancel"] = struct.pack("!III", 80877102, 1, 2)
    return s


def scram_verifier(password, salt=b"fuzz-salt-16byte", iterations=4096):
    import base64
    import hmac
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    ck = hmac.digest(salted, b"Client Key", "sha256")
    sk = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(ck).digest())}:{b64(sk)}"


def userlist_seeds():
    md5 = "md5" + hashlib.md5(b"secretbob").hexdigest()
    return {
        "plain": b'"alice" "alice-secret"\n"bob" "bob-secret"\n',
        "md5_scram": f'"bob" "{md5}"\n"carol" "{scram_verifier("carol")}"\n'.encode(),
        "quoting": b'; comment\n# another\n\n"we""ird" "pa""ss word"\n"x"  "y"  \n',
        "broken": b'"alice" alice-secret\n"unterminated\n',
        "duplicate": b'"alice" "a"\n"alice" "b"\n',
        "crlf": b'"alice" "a"\r\n"bob" "b"\r\n',
    }


def config_seeds():
    s = {}
    for name, path in [("shipped", REPO / "conf" / "pgwarden.ini"),
                       ("demo", REPO / "contrib" / "demo" / "pgwarden.ini")]:
        if path.exists():
            s[name] = path.read_bytes()
    s["full"] = b"""[pgwarden]
listen_addr = 127.0.0.1
listen_port = 6432
auth_type = scram-sha-256
auth_file = users.txt
client_tls = disable
workers = 2
pool_size = 10
pool_timeout = 10s
statement_timeout = 500ms
default_access = deny
allowed_functions = pg_catalog.pg_sleep, public.safe_fn
admin_users = admin, root

[users]
alice = acme
carol = acme, globex

[tenant.acme]
backend = host=127.0.0.1 port=5432 dbname=acme user=reader
id = "o'acme ; # quoted"
pool_size = 3

[tenant.globex]
backend = host=127.0.0.1 dbname=globex

[table.public.customers]
row_filter = tenant_id = $tenant
mask.ssn = null
mask.email = redact
mask.card = partial
mask.score = hash
mask.secret = hide

[table.internal_notes]
hidden = yes

[llm]
provider = openai
base_url = http://127.0.0.1:9/v1
model = fake
timeout = 5s

[cache]
mode = memory
"""
    s["env"] = b"[pgwarden]\nlisten_port = ${PGW_FUZZ_UNSET}\n"
    s["bad_line"] = b"[pgwarden]\nlisten_port = 99999999999\nbogus\n[tenant.]\n"
    return s


def hostile_statements():
    path = REPO / "tests" / "integration" / "sql" / "hostile.sql"
    out, cont = [], ""
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.endswith("\\"):
            cont += line[:-1] + "\n"
            continue
        line, cont = cont + line, ""
        if "|" in line:
            out.append(line.split("|", 1)[1].strip())
    return out


def policy_seeds():
    s = {}
    plain = [
        "SELECT * FROM customers WHERE id = 5",
        "select c.name, sum(o.total) from customers c join orders o on o.customer_id = c.id "
        "group by 1 order by 2 desc limit 5",
        "TABLE orders",
        "VALUES (1, 'a'), (2, 'b')",
        "WITH big AS (SELECT * FROM orders WHERE total > 100) SELECT count(*) FROM big",
        "DECLARE cur CURSOR FOR SELECT id FROM orders",
        "FETCH 10 FROM cur",
        "COPY (SELECT id FROM orders) TO STDOUT",
        "COPY orders (id, total) TO STDOUT WITH (FORMAT csv)",
        "SHOW search_path",
        "SET application_name = 'bi'",
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1; COMMIT",
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
        "SELECT '16433'::regclass, 'customers'::regclass",
        "SELECT * FROM internal_notes",
        "SELECT public.safe_fn(id) FROM products",
        "SELECT length(name) FROM customers WHERE name LIKE 'A%' AND score BETWEEN 1 AND 9",
        "SELECT * FROM orders WHERE id = ANY($1) AND total > $2",
        "EXPLAIN SELECT * FROM customers WHERE name < 'x'",
        "SELECT ARRAY[ARRAY[1], CASE WHEN tenant_id = 'x' THEN ARRAY[1,2] ELSE ARRAY[1] END] "
        "IS NOT NULL FROM orders",
        "SELECT * FROM ask('orders per month') AS t",
        "DELETE FROM orders",
        "",
        ";;;",
    ]
    for i, sql in enumerate(plain):
        s[f"plain_{i:02d}"] = sql.encode()
    for i, sql in enumerate(hostile_statements()):
        s[f"hostile_{i:03d}"] = sql.encode()
    # issue 7 item 8: deep and wide
    s["deep_sum_6000"] = ("SELECT " + "+".join(["1"] * 6000)).encode()
    s["deep_not_4500"] = ("SELECT " + "NOT " * 4500 + "true").encode()
    s["wide_call_8000"] = ("SELECT concat(" + ",".join(["'a'"] * 8000) + ")").encode()
    s["wide_in_20000"] = ("SELECT id FROM orders WHERE id IN (" +
                          ",".join(str(i) for i in range(20000)) + ")").encode()
    s["deep_parens_1000"] = ("SELECT " + "(" * 1000 + "1" + ")" * 1000).encode()
    s["deep_subquery_200"] = ("SELECT " + "(SELECT " * 200 + "1" + ")" * 200).encode()
    s["deep_and_3000"] = ("SELECT id FROM orders WHERE " +
                          " AND ".join(f"id <> {i}" for i in range(3000))).encode()
    s["deep_case_500"] = ("SELECT " + "CASE WHEN id = 1 THEN " * 500 + "1" +
                          " END" * 500 + " FROM orders").encode()
    s["wide_oid_call_500"] = ("SELECT concat(" +
                              ",".join(f"'{16000 + i}'::regclass" for i in range(500)) +
                              ")").encode()
    return s


def ask_seeds():
    return {
        "fenced": b"Here is the query:\n```sql\nSELECT name FROM customers;\n```\nDone.",
        "fenced_plain": b"```\nWITH t AS (SELECT 1) SELECT * FROM t\n```",
        "bare": b"SELECT count(*) FROM orders;  \n",
        "cannot": b"CANNOT_ANSWER: the schema has no salaries",
        "cannot_prose": b"I cannot answer that question.",
        "prose": b"The answer is 42.",
        "two_blocks": b"```sql\nSELECT 1;\n```\nor\n```sql\nSELECT 2\n```",
        "unterminated": b"```sql\nSELECT 1",
        "dml": b"```sql\nDELETE FROM orders;\n```",
        "ask_stmt": b"ASK how many orders per month?",
        "ask_quoted": b"ask 'what''s the top customer';",
        "ask_dollar": b"  /* c */ ASK $q$which products$q$",
        "ask_relation": b"SELECT * FROM ask('orders per month') AS t(m, n) WHERE n > 1",
        "ask_relation_two": b"SELECT * FROM ask('a'), ask('b')",
        "error_quoted": b'column "secret_score" does not exist',
        "error_literal": b"invalid input syntax for type integer: \"Ada Acme's\"",
        "error_hidden": b'relation "internal_notes" does not exist',
        "error_apostrophe": b"the model's query failed near 'x'",
    }


def main():
    targets = {
        "codec": codec_seeds(),
        "auth": auth_seeds(),
        "userlist": userlist_seeds(),
        "config": config_seeds(),
        "policy": policy_seeds(),
        "ask": ask_seeds(),
    }
    for target, seeds in targets.items():
        d = HERE / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():
            old.unlink()
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
