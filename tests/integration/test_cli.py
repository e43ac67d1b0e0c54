"""The command line: -V, --check, -d."""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import PGWARDEN_BIN, REPO, port_accepts, wait_until


def run(*args, timeout=10):
    return subprocess.run([str(PGWARDEN_BIN), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def package_version():
    text = (REPO / "configure.ac").read_text()
    return re.search(r"AC_INIT\(\[pgwarden\],\s*\[([^\]]+)\]", text).group(1)


def test_version_flag_prints_the_package_version():
    result = run("-V")
    assert result.returncode == 0, result.stderr
    assert "pgwarden" in result.stdout
    assert package_version() in result.stdout


def test_check_accepts_a_good_config(pgwarden):
    gw = pgwarden(start=False)
    result = run("--check", gw.config_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not port_accepts(gw.port), "--check must not start listening"


@pytest.mark.parametrize("bad_line", [
    "metrics_port = not-a-port",
    "statement_timeout = forever",
    "client_idle_timeout = 5 fortnights",
    "no_such_setting = 1",
    "this line is not a setting",
])
def test_check_names_file_and_line_of_a_bad_setting(pgwarden, bad_line):
    gw = pgwarden(start=False)
    lines = gw.config_text().splitlines()
    lines.insert(2, bad_line)  # becomes line 3, inside [pgwarden]
    gw.config_path.write_text("\n".join(lines) + "\n")
    result = run("--check", gw.config_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{gw.config_path.name}:3:" in output, output


def test_check_reports_a_missing_file(tmp_path):
    missing = tmp_path / "nope.ini"
    result = run("--check", missing)
    assert result.returncode == 1
    assert "nope.ini" in result.stdout + result.stderr


def test_daemonize_returns_and_keeps_serving(pgwarden):
    gw = pgwarden(start=False)
    result = run("-d", gw.config_path, timeout=15)
    assert result.returncode == 0, result.stdout + result.stderr
    daemon = None
    try:
        wait_until(lambda: port_accepts(gw.port), 10, "the daemon to listen")
        daemon = find_process_with_arg(str(gw.config_path))
        assert daemon is not None, "no pgwarden process left running"
        with gw.connect("alice", "acme") as conn:
            assert conn.execute("SELECT name FROM tenant_marker").fetchone() == ("acme",)
    finally:
        daemon = daemon or find_process_with_arg(str(gw.config_path))
        if daemon:
            os.kill(daemon, signal.SIGINT)
            wait_until(lambda: not Path(f"/proc/{daemon}").exists()
                       or "Z" in Path(f"/proc/{daemon}/stat").read_text().split()[2],
                       10, "the daemon to exit")


def find_process_with_arg(arg):
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv and any(a.endswith(b"pgwarden") for a in argv):
            return int(entry.name)
    return None
