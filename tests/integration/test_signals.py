"""Signals: SIGHUP reloads, SIGTERM drains, SIGINT stops at once."""

import signal
import threading
import time

import psycopg

from conftest import DEFAULT_USERS, port_accepts, wait_until


def tenant_of(conn):
    return conn.execute("SELECT name FROM tenant_marker").fetchone()[0]


def can_login(gw, user, dbname):
    return gw.login_error(user, dbname) is None


def test_sighup_adds_a_user_without_disturbing_sessions(pgwarden):
    gw = pgwarden()
    assert gw.login_error("dave", "globex").sqlstate == "28000"
    with gw.connect("alice", "acme") as existing:
        assert tenant_of(existing) == "acme"
        gw.reload(users={**DEFAULT_USERS, "dave": "globex"})
        wait_until(lambda: can_login(gw, "dave", "globex"), 10, "dave to be admitted")
        assert tenant_of(existing) == "acme"
        with gw.connect("dave", "globex") as conn:
            assert tenant_of(conn) == "globex"
    assert gw.alive()


def test_sighup_removes_a_user(pgwarden):
    gw = pgwarden()
    assert can_login(gw, "bob", "globex")
    users = {u: t for u, t in DEFAULT_USERS.items() if u != "bob"}
    gw.reload(users=users)
    wait_until(lambda: not can_login(gw, "bob", "globex"), 10, "bob to be refused")
    assert gw.login_error("bob", "globex").sqlstate == "28000"
    assert can_login(gw, "alice", "acme")


def test_sighup_with_a_broken_config_keeps_the_old_one(pgwarden):
    gw = pgwarden()
    log_before = len(gw.log_text())
    with gw.connect("alice", "acme") as existing:
        # a new user and a syntax error: nothing of this file may take effect
        gw.reload(users={**DEFAULT_USERS, "dave": "globex"},
                  extra="\n[pgwarden]\nlisten_port = banana\n")
        wait_until(lambda: gw.config_path.name in gw.log_text()[log_before:], 10,
                   "the rejected reload to be logged with the config file name")
        assert gw.alive()
        assert gw.login_error("dave", "globex").sqlstate == "28000"
        assert tenant_of(existing) == "acme"
    with gw.connect("carol", "globex") as conn:
        assert tenant_of(conn) == "globex"
    # a later good reload still works
    gw.reload(users={**DEFAULT_USERS, "dave": "globex"})
    wait_until(lambda: can_login(gw, "dave", "globex"), 10, "dave to be admitted")


def run_in_thread(conn, sql):
    outcome = {}

    def run():
        try:
            outcome["row"] = conn.execute(sql).fetchone()
        except psycopg.Error as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_running(postgres, marker):
    with postgres.connect() as su:
        wait_until(lambda: su.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND state = 'active' "
            "AND pid <> pg_backend_pid()", (f"%{marker}%",)).fetchone()[0],
            10, f"{marker} to run on the backend")


def test_sigterm_lets_running_statements_finish_then_exits(pgwarden, postgres):
    gw = pgwarden(settings={"shutdown_timeout": "10s"})
    conn = gw.connect("alice", "acme")
    thread, outcome = run_in_thread(conn, "SELECT 'drained' FROM pg_sleep(1.5)")
    wait_running(postgres, "drained")
    started = time.monotonic()
    gw.signal(signal.SIGTERM)
    # no new clients once shutdown has begun
    wait_until(lambda: not can_connect(gw), 1.0, "the listener to close")
    thread.join(10)
    assert outcome.get("row") == ("drained",), outcome
    assert gw.wait_exit(10) == 0
    assert time.monotonic() - started < 8
    conn.close()


def can_connect(gw):
    try:
        return gw.login_error("bob", "globex") is None
    except OSError:
        return False


def test_sigterm_gives_up_after_shutdown_timeout(pgwarden, postgres):
    gw = pgwarden(settings={"shutdown_timeout": "1s"})
    conn = gw.connect("alice", "acme")
    thread, outcome = run_in_thread(conn, "SELECT 'too slow' FROM pg_sleep(30)")
    wait_running(postgres, "too slow")
    started = time.monotonic()
    gw.signal(signal.SIGTERM)
    gw.wait_exit(10)
    assert time.monotonic() - started < 6
    thread.join(10)
    assert "error" in outcome, "the client must see its session end"
    conn.close()


def test_sigint_exits_at_once(pgwarden, postgres):
    gw = pgwarden(settings={"shutdown_timeout": "30s"})
    conn = gw.connect("alice", "acme")
    thread, outcome = run_in_thread(conn, "SELECT 'interrupted' FROM pg_sleep(30)")
    wait_running(postgres, "interrupted")
    started = time.monotonic()
    gw.signal(signal.SIGINT)
    gw.wait_exit(5)
    assert time.monotonic() - started < 3
    thread.join(10)
    assert "error" in outcome
    assert not port_accepts(gw.port)
    conn.close()
