"""envd init: a tini work-alike for PID 1 (envd/init.py).

Most tests run the real thing as a subprocess (``python -m envd.init``) with small
``sh`` or ``python -S`` children that report what they see on a pipe; nothing sleeps
for a fixed time, every wait polls with a deadline.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from envd import init as envd_init

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
INIT = [PY, "-m", "envd.init"]
DEADLINE = 15.0  # seconds; generous for loaded CI machines, never slept through
TINI = "/usr/bin/tini"

UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}
NOT_FORWARDED = {signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU}
FORWARDED = sorted(set(signal.valid_signals()) - UNCATCHABLE - NOT_FORWARDED)


def init_env(**extra: str) -> dict[str, str]:
    """The test's environment without TINI_* / POSIXLY_CORRECT, with the repo importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TINI_") and key != "POSIXLY_CORRECT"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_init(
    args: list[str], env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*INIT, *args],
        cwd=REPO,
        env=init_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        **kwargs,
    )


def child(script: str) -> list[str]:
    """A command line running ``script`` in a fast-starting Python."""
    return [PY, "-S", "-c", script]


class Lines:
    """Read newline-terminated lines from a file descriptor, each with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"nothing more within {DEADLINE}s; pending {self.buffer!r}")
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: a pty whose every slave is closed
            chunk = b""
        self.buffer += chunk
        return bool(chunk)

    def line(self) -> str:
        deadline = time.monotonic() + DEADLINE
        while b"\n" not in self.buffer:
            if not self._fill(deadline):
                raise AssertionError(f"EOF before a full line; got {self.buffer!r}")
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode().rstrip("\r")

    def rest(self) -> str:
        """Everything until EOF, i.e. until every process holding the write end is gone."""
        deadline = time.monotonic() + DEADLINE
        while self._fill(deadline):
            pass
        rest, self.buffer = self.buffer, b""
        return rest.decode()


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start processes with stdout on a pipe; SIGKILL whatever is left at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        kwargs.setdefault("env", init_env())
        proc = subprocess.Popen(  # type: ignore[call-overload]
            argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, **kwargs
        )
        started.append(proc)
        return proc  # type: ignore[no-any-return]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(DEADLINE)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture
def stray_pids() -> Iterator[list[int]]:
    """Pids a test leaves behind on purpose (grandchildren); SIGKILLed at teardown."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_exit(proc: subprocess.Popen[bytes]) -> int:
    return proc.wait(DEADLINE)


# ---------------------------------------------------------------- parsing (in-process)


def parse(argv: list[str], **environ: str) -> envd_init.Options:
    return envd_init.parse_args(argv, environ)


def parse_exit(argv: list[str], **environ: str) -> envd_init.UsageExit:
    with pytest.raises(envd_init.UsageExit) as caught:
        envd_init.parse_args(argv, environ)
    return caught.value


def test_options_are_permuted_like_glibc_getopt() -> None:
    """Options after the program name are still options, as with tini's glibc getopt."""
    options = parse(["echo", "-v", "hi", "-g"])
    assert options.command == ["echo", "hi"]
    assert (options.verbosity, options.kill_process_group) == (2, 1)


def test_double_dash_ends_options_and_keeps_earlier_operands() -> None:
    """``--`` ends option parsing; operands before and after it form the command in order."""
    options = parse(["-s", "echo", "a", "--", "-l", "--"])
    assert options.command == ["echo", "a", "-l", "--"]
    assert options.subreaper == 1


def test_posixly_correct_stops_at_the_first_operand() -> None:
    """With POSIXLY_CORRECT set, option parsing stops at the program name like glibc's."""
    options = parse(["echo", "-v", "--", "x"], POSIXLY_CORRECT="1")
    assert options.command == ["echo", "-v", "--", "x"]
    assert options.verbosity == envd_init.DEFAULT_VERBOSITY


def test_grouped_options_and_attached_arguments() -> None:
    """``-vsg`` groups flags and ``-e4`` / ``-pSIGTERM`` attach their argument, as in getopt."""
    options = parse(["-vsg", "-e4", "-e", "5", "-pSIGTERM", "--", "true"])
    assert (options.verbosity, options.subreaper, options.kill_process_group) == (2, 1, 1)
    assert options.expect_status == {4, 5}
    assert options.parent_death_signal == signal.SIGTERM


@pytest.mark.parametrize(
    ("text", "status"),
    [
        *[("0", 0), ("255", 255), ("+3", 3), ("-0", 0), ("  7", 7), ("", 0)],
        *[("256", None), ("-1", None), ("3x", None), ("x", None), (" ", None), ("+", None)],
    ],
)
def test_exit_status_argument_follows_strtol(text: str, status: int | None) -> None:
    """``-e`` accepts exactly what tini's strtol check accepts, within 0..255."""
    assert envd_init.parse_exit_status(text) == status


@pytest.mark.parametrize("value", ["300", "abc", "-1"])
def test_invalid_exit_status_is_a_usage_error(value: str) -> None:
    """An out-of-range ``-e`` is fatal with exit code 1 and names the bad value."""
    done = parse_exit(["-e", value, "true"])
    assert done.code == 1
    assert f"Not a valid option for -e: {value}" in done.err


def test_parent_death_signal_names_are_tini_s() -> None:
    """``-p`` takes tini's SIG-prefixed names and rejects anything else with exit 1."""
    assert parse(["-p", "SIGKILL", "true"]).parent_death_signal == signal.SIGKILL
    for bad in ("TERM", "sigterm", "15", "SIGRTMIN"):
        done = parse_exit(["-p", bad, "true"])
        assert (done.code, f"Not a valid option for -p: {bad}" in done.err) == (1, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-x", "true"], "invalid option -- 'x'"),
        (["--foo", "true"], "invalid option -- '-'"),
        (["-e"], "option requires an argument -- 'e'"),
        (["-p"], "option requires an argument -- 'p'"),
        ([], "Usage:"),
        (["-v"], "Usage:"),
    ],
)
def test_usage_errors_exit_1_with_usage_on_stderr(argv: list[str], message: str) -> None:
    """Unknown options, missing arguments and a missing program exit 1 with usage on stderr."""
    done = parse_exit(argv)
    assert done.code == 1
    assert message in done.err
    assert "Usage:" in done.err
    assert done.out == ""


def test_help_license_and_version() -> None:
    """``-h``/``-l``/``--version`` print to stdout and exit 0; --version only when alone."""
    assert parse_exit(["-h", "-x"]).code == 0
    assert "Usage: envd init [OPTIONS] PROGRAM -- [ARGS]" in parse_exit(["-h"]).out
    assert "Apache" in parse_exit(["-l"]).out
    version = parse_exit(["--version"])
    assert (version.code, version.out.startswith("envd init version ")) == (0, True)
    assert parse_exit(["--version", "true"]).code == 1


def test_environment_variables_are_tini_s() -> None:
    """TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP and TINI_VERBOSITY (which overrides -v) work."""
    options = parse(
        ["-vv", "true"], TINI_SUBREAPER="", TINI_KILL_PROCESS_GROUP="", TINI_VERBOSITY="0"
    )
    assert (options.subreaper, options.kill_process_group, options.verbosity) == (1, 1, 0)
    assert parse(["true"], TINI_VERBOSITY="3abc").verbosity == 3
    assert parse(["true"], TINI_VERBOSITY="junk").verbosity == 0


@pytest.mark.parametrize("code", range(256))
def test_every_exit_status_maps_through(code: int) -> None:
    """Exit statuses 0..255 pass through unchanged unless remapped with -e."""
    run = envd_init.Init(parse(["true"]))
    assert run.child_exit_code(code << 8) == code
    remapped = envd_init.Init(parse(["-e", str(code), "true"]))
    assert remapped.child_exit_code(code << 8) == 0


@pytest.mark.parametrize("signum", [1, 2, 9, 15, 31, 34, 64])
def test_signal_death_maps_to_128_plus_n(signum: int) -> None:
    """A child killed by signal N makes the init exit 128+N, like sh and bash."""
    assert envd_init.Init(parse(["true"])).child_exit_code(signum) == 128 + signum


def test_loop_survives_its_own_exceptions(capfd: pytest.CaptureFixture[str]) -> None:
    """An unexpected exception in the loop is logged to stderr and supervision goes on."""
    run = envd_init.Init(parse(["true"]))
    calls: list[str] = []

    def flaky_wait() -> None:
        calls.append("wait")
        if calls.count("wait") < 3:
            raise RuntimeError("boom")

    def reap() -> None:
        run.exit_code = 7

    run.wait_and_forward = flaky_wait  # type: ignore[method-assign]
    run.reap_zombies = reap  # type: ignore[method-assign]
    run.back_off = lambda failures: calls.append(f"back off {failures}")  # type: ignore[method-assign]
    assert run.supervise() == 7
    assert calls == ["wait", "back off 1", "wait", "back off 2", "wait"]
    assert capfd.readouterr().err.count("Unexpected error (RuntimeError: boom)") == 2


# --------------------------------------------------------- compatibility with tini


TINI_CASES = [
    ["--", "true"],
    ["true"],
    [],
    ["-x", "true"],
    ["-e"],
    ["-e", "300", "true"],
    ["-e", "", "true"],
    ["-e", " 5", "--", "sh", "-c", "exit 5"],
    ["-e", "+3", "--", "sh", "-c", "exit 3"],
    ["-e4", "--", "sh", "-c", "exit 4"],
    ["-e", "4", "--", "sh", "-c", "exit 5"],
    ["-p", "SIGFOO", "true"],
    ["-p", "SIGTERM", "true"],
    ["-h"],
    ["-l"],
    ["--version"],
    ["--version", "true"],
    ["-v", "--version"],
    ["sh", "-c", "exit 3"],
    ["sh", "--", "-c", "exit 3"],
    ["-vsg", "--", "true"],
    ["-", "true"],
    ["--", "nonexistent-command-for-envd-init"],
    ["--", "/etc/passwd"],
    ["--", "/"],
    ["--", "sh", "-c", "kill -s TERM $$"],
]


@pytest.mark.skipif(not os.access(TINI, os.X_OK), reason=f"{TINI} is not installed")
@pytest.mark.parametrize("argv", TINI_CASES, ids=lambda argv: " ".join(argv) or "<none>")
def test_exit_codes_match_tini(argv: list[str]) -> None:
    """For the same command line, envd init exits with the same code as tini 0.19."""
    env = init_env(TINI_SUBREAPER="1")
    tini = subprocess.run(
        [TINI, *argv], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=DEADLINE
    )
    ours = run_init(argv, env=env)
    assert ours.returncode == tini.returncode, ours.stderr


# ----------------------------------------------------------- exit codes (processes)


@pytest.mark.parametrize("code", [0, 1, 2, 42, 125, 126, 127, 128, 129, 143, 254, 255])
def test_exits_with_the_child_s_code(code: int) -> None:
    """The init exits with the main child's exit code."""
    assert run_init(["-s", "--", "sh", "-c", f"exit {code}"]).returncode == code


@pytest.mark.parametrize("name", ["SIGHUP", "SIGINT", "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGTERM"])
def test_exits_128_plus_n_when_the_child_is_killed(name: str) -> None:
    """A child killed by signal N makes the init exit with 128+N."""
    script = f"ulimit -c 0; kill -s {name[3:]} $$"

    def default_disposition() -> None:
        # A shell's background job inherits SIGINT ignored, and exec keeps
        # ignored signals ignored (as tini would): start from the default.
        if name != "SIGKILL":
            signal.signal(getattr(signal, name), signal.SIG_DFL)

    result = run_init(["-s", "--", "sh", "-c", script], preexec_fn=default_disposition)
    assert result.returncode == 128 + getattr(signal, name)


@pytest.mark.parametrize(
    ("options", "script", "expected"),
    [
        (["-e", "3"], "exit 3", 0),
        (["-e", "3"], "exit 4", 4),
        (["-e", "3", "-e", "4"], "exit 4", 0),
        (["-e", "143"], "kill -s TERM $$", 0),
        (["-e", "0"], "exit 0", 0),
    ],
)
def test_expected_exit_codes_are_remapped_to_zero(
    options: list[str], script: str, expected: int
) -> None:
    """``-e CODE`` turns exactly that exit code (after 128+N mapping) into 0."""
    assert run_init(["-s", *options, "--", "sh", "-c", script]).returncode == expected


def test_exits_when_the_main_child_exits_even_if_others_live(stray_pids: list[int]) -> None:
    """The init exits as soon as its main child does, without waiting for other descendants."""
    result = run_init(["-s", "--", "sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!; exit 5"])
    stray_pids.append(int(result.stdout.split()[0]))
    assert result.returncode == 5


# ---------------------------------------------------------------------- exec errors


def test_command_not_found_exits_127_with_one_line() -> None:
    """A missing command exits 127 with one clear line on stderr."""
    result = run_init(["-s", "--", "no-such-command-envd"])
    assert result.returncode == 127
    assert result.stderr.splitlines() == [
        line for line in result.stderr.splitlines() if "exec no-such-command-envd failed" in line
    ]
    assert result.stderr.count("\n") == 1
    assert "No such file or directory" in result.stderr


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_not_executable_exits_126(tmp_path: Path, kind: str) -> None:
    """A file without the execute bit, or a directory, exits 126 with one line on stderr."""
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("#!/bin/sh\nexit 0\n")
    else:
        target.mkdir()
    result = run_init(["-s", "--", str(target)])
    assert result.returncode == 126
    assert result.stderr.count("\n") == 1
    assert f"exec {target} failed: Permission denied" in result.stderr


def test_path_search_remembers_permission_denied(tmp_path: Path) -> None:
    """Like execvp(3), a non-executable match on PATH gives 126 unless a later one runs."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "tool").write_text("#!/bin/sh\nexit 0\n")
    env = init_env(PATH=f"{first}:{second}:/usr/bin:/bin")
    assert run_init(["-s", "--", "tool"], env=env).returncode == 126
    (second / "tool").write_text("#!/bin/sh\nexit 9\n")
    (second / "tool").chmod(0o755)
    assert run_init(["-s", "--", "tool"], env=env).returncode == 9


def test_script_without_shebang_runs_under_sh(tmp_path: Path) -> None:
    """An executable file with no #! line is run by /bin/sh, as execvp(3) does."""
    script = tmp_path / "legacy"
    script.write_text("exit 6\n")
    script.chmod(stat.S_IRWXU)
    assert run_init(["-s", "--", str(script)]).returncode == 6


def test_closed_stdin_is_not_an_error() -> None:
    """With stdin closed the command still runs (tini exits 1: tcsetpgrp fails with EBADF)."""
    result = subprocess.run(
        [*INIT, "-s", "--", "sh", "-c", "exit 4"],
        cwd=REPO,
        env=init_env(),
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(0),
        capture_output=True,
        timeout=DEADLINE,
    )
    assert (result.returncode, result.stderr) == (4, b"")


# ------------------------------------------------------------------------- signals

REPORTER = r"""
import os, signal
def report(signum, frame):
    os.write(1, b"%d\n" % signum)
for signum in signal.valid_signals():
    if signum not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(signum, report)
os.write(1, b"ready %d\n" % os.getpid())
while True:
    signal.pause()
"""


def test_every_forwardable_signal_reaches_the_child(
    spawn: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """Every catchable signal but SIGCHLD/SIGTTIN/SIGTTOU sent to the init reaches the child."""
    proc = spawn([*INIT, "-s", "--", *child(REPORTER)])
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    child_pid = int(lines.line().split()[1])
    missed = []
    for signum in FORWARDED:
        os.kill(proc.pid, signum)
        got = int(lines.line())
        if got != signum:
            missed.append((signum, got))
    assert missed == []
    os.kill(child_pid, signal.SIGKILL)
    assert wait_exit(proc) == 128 + signal.SIGKILL


def test_sigchld_sigttin_sigttou_are_not_forwarded(
    spawn: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """SIGCHLD only makes the init reap and SIGTTIN/SIGTTOU are ignored: none reach the child."""
    proc = spawn([*INIT, "-s", "--", *child(REPORTER)])
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    child_pid = int(lines.line().split()[1])
    for signum in (signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1):
        os.kill(proc.pid, signum)
    assert int(lines.line()) == signal.SIGUSR1  # the init forwards in the order received
    os.kill(proc.pid, signal.SIGTERM)
    assert int(lines.line()) == signal.SIGTERM
    # The child survives the SIGTERM it catches: end it, not the init, or it
    # outlives the test as an orphan.
    os.kill(child_pid, signal.SIGKILL)
    assert wait_exit(proc) == 128 + signal.SIGKILL


FAMILY = r"""
import os, signal, sys
role = "child"
if os.fork() == 0:
    role = "grandchild"
def report(signum, frame):
    os.write(1, b"%s %d\n" % (role.encode(), signum))
for signum in (signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(signum, report)
os.write(1, b"ready %s %d\n" % (role.encode(), os.getpid()))
while True:
    signal.pause()
"""


def start_family(
    spawn: Callable[..., subprocess.Popen[bytes]], stray_pids: list[int], *args: str, **env: str
) -> tuple[subprocess.Popen[bytes], Lines, dict[str, int]]:
    proc = spawn([*INIT, "-s", *args, "--", *child(FAMILY)], env=init_env(**env))
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    pids = {}
    for _ in range(2):
        _, role, pid = lines.line().split()
        pids[role] = int(pid)
    stray_pids.append(pids["grandchild"])
    return proc, lines, pids


@pytest.mark.parametrize(("args", "env"), [(["-g"], {}), ([], {"TINI_KILL_PROCESS_GROUP": ""})])
def test_process_group_mode_reaches_grandchildren(
    spawn: Callable[..., subprocess.Popen[bytes]],
    stray_pids: list[int],
    args: list[str],
    env: dict[str, str],
) -> None:
    """With -g (or TINI_KILL_PROCESS_GROUP) signals go to the child's whole process group."""
    proc, lines, _ = start_family(spawn, stray_pids, *args, **env)
    os.kill(proc.pid, signal.SIGUSR1)
    assert sorted([lines.line(), lines.line()]) == ["child 10", "grandchild 10"]
    os.kill(proc.pid, signal.SIGTERM)
    assert wait_exit(proc) == 128 + signal.SIGTERM


def test_without_group_mode_only_the_child_is_signalled(
    spawn: Callable[..., subprocess.Popen[bytes]], stray_pids: list[int]
) -> None:
    """Without -g only the direct child gets forwarded signals, not the rest of its group."""
    proc, lines, pids = start_family(spawn, stray_pids)
    os.kill(proc.pid, signal.SIGUSR1)
    assert lines.line() == "child 10"
    # Had the group been signalled, the grandchild's SIGUSR1 would be pending already, and
    # Python runs pending handlers in signal-number order: USR1 (10) before USR2 (12).
    os.kill(pids["grandchild"], signal.SIGUSR2)
    assert lines.line() == "grandchild 12"
    os.kill(pids["child"], signal.SIGKILL)
    assert wait_exit(proc) == 128 + signal.SIGKILL


STATE = "grep -E '^Sig(Blk|Ign|Cgt):' /proc/self/status"


def _ignore(signals: list[int]) -> Callable[[], None]:
    def preexec() -> None:
        for signum in signals:
            signal.signal(signum, signal.SIG_IGN)

    return preexec


@pytest.mark.parametrize(
    "ignored", [[], [signal.SIGHUP], [signal.SIGHUP, signal.SIGCHLD, signal.SIGTTOU]]
)
def test_child_gets_the_signal_state_the_init_was_given(ignored: list[int]) -> None:
    """The child's mask and dispositions are the init's original ones (SIGPIPE not ignored)."""
    common = {"cwd": REPO, "stdin": subprocess.DEVNULL, "capture_output": True, "text": True}
    direct = subprocess.run(
        ["sh", "-c", STATE], preexec_fn=_ignore(ignored), timeout=DEADLINE, **common
    )
    under_init = subprocess.run(
        [*INIT, "-s", "--", "sh", "-c", f"{STATE}; exit 3"],
        env=init_env(),
        preexec_fn=_ignore(ignored),
        timeout=DEADLINE,
        **common,
    )
    assert under_init.returncode == 3  # even with SIGCHLD ignored by whoever started us
    assert under_init.stdout == direct.stdout
    ignored_mask = int(re.search(r"SigIgn:\s*(\w+)", under_init.stdout)[1], 16)  # type: ignore[index]
    assert not ignored_mask & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1))


def test_signals_pending_before_exec_get_default_actions() -> None:
    """A signal that reaches the child between fork and exec acts as it would after exec."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked test process
        code = 3
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            run = envd_init.Init(parse(["true"]))
            run.configure_signals()
            os.kill(os.getpid(), signal.SIGINT)  # pending: the init blocks everything
            run.restore_signals()  # must die here of SIGINT, not raise KeyboardInterrupt
            code = 4
        except BaseException:
            code = 5
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), os.waitstatus_to_exitcode(status)
    assert os.WTERMSIG(status) == signal.SIGINT


def test_parent_death_before_prctl_is_delivered_at_once() -> None:
    """If the parent died before ``-p`` took effect, the init signals itself right away."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked test process
        code = 3
        try:
            run = envd_init.Init(parse(["-p", "SIGUSR1", "true"]))
            run.configure_signals()  # blocks SIGUSR1, so it stays pending
            run.parent_pid = -1  # as if the parent had died since start-up
            delivered = run.set_parent_death_signal() and signal.SIGUSR1 in signal.sigpending()
            code = 0 if delivered else 4
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def test_parent_death_signal_is_forwarded(spawn: Callable[..., subprocess.Popen[bytes]]) -> None:
    """With ``-p SIGTERM`` the init gets SIGTERM when its parent dies and passes it on."""
    on_term = (
        "import os, signal, sys\n"
        "def bye(signum, frame):\n"
        "    os.write(1, b'child got %d\\n' % signum); os._exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "os.write(1, b'ready\\n')\n"
        "while True: signal.pause()\n"
    )
    parent = (
        "import os, subprocess, sys, signal\n"
        f"subprocess.Popen({[*INIT, '-p', 'SIGTERM', '--', *child(on_term)]!r})\n"
        "signal.pause()\n"
    )
    proc = spawn(child(parent), env=init_env(TINI_VERBOSITY="0"))
    assert proc.stdout is not None
    lines = Lines(proc.stdout.fileno())
    assert lines.line() == "ready"
    proc.kill()
    assert lines.line() == f"child got {signal.SIGTERM}"
    assert lines.rest() == ""  # EOF: the init, which holds the pipe too, has exited


# ------------------------------------------------------------------ zombie reaping

ORPHANS = r"""
import os, sys, time
parent = os.getppid()  # the init: PID 1, or a subreaper
for _ in range(int(sys.argv[1])):
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            deadline = time.monotonic() + 10
            while os.getppid() != parent and time.monotonic() < deadline:
                pass  # exit only once orphaned and re-parented to the init
            os._exit(0)
        os._exit(0)
    os.waitpid(middle, 0)

def orphans(zombies_only):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and (fields[0] == "Z" or not zombies_only):
            found.append(entry)
    return found

# Every grandchild is the init's now; wait until each has exited *and* been
# reaped (not just "no zombie at this instant": one still spinning would be
# killed unreaped when this script, and so a PID 1 init, exits).
deadline = time.monotonic() + 10
while orphans(False) and time.monotonic() < deadline:
    time.sleep(0.01)
print("zombies left:", len(orphans(True)), flush=True)
"""


def unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True
    )
    return probe.returncode == 0


needs_pid_namespace = pytest.mark.skipif(
    not unshare_works(), reason="unshare --pid --fork --mount-proc is not permitted here"
)


@needs_pid_namespace
def test_reaps_orphaned_zombies_as_pid_1() -> None:
    """As PID 1 of a PID namespace the init reaps every orphan that died, warning with -w."""
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", *INIT, "-w", "--", *child(ORPHANS), "5"],
        cwd=REPO,
        env=init_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 0, result.stderr
    assert "zombies left: 0" in result.stdout
    assert len(re.findall(r"Reaped zombie process with pid=\d+", result.stderr)) == 5
    assert "not running as PID 1" not in result.stderr


def test_reaps_orphaned_zombies_as_subreaper() -> None:
    """With -s the init is a child subreaper: orphans are re-parented to it and reaped."""
    result = run_init(["-s", "-w", "--", *child(ORPHANS), "4"])
    assert result.returncode == 0, result.stderr
    assert "zombies left: 0" in result.stdout
    assert len(re.findall(r"Reaped zombie process with pid=\d+", result.stderr)) == 4


def test_warns_when_neither_pid_1_nor_subreaper() -> None:
    """Not PID 1 and not a subreaper: tini's warning on stderr, unless -s or verbosity 0."""
    assert "envd init is not running as PID 1" in run_init(["--", "true"]).stderr
    assert run_init(["-s", "--", "true"]).stderr == ""
    assert run_init(["--", "true"], env=init_env(TINI_SUBREAPER="")).stderr == ""
    assert run_init(["--", "true"], env=init_env(TINI_VERBOSITY="0")).stderr == ""


# ----------------------------------------------------------------------------- TTY

TTY_REPORT = (
    "import os\n"
    "print('pid=%d pgrp=%d fg=%d parent=%d' % (os.getpid(), os.getpgrp(), os.tcgetpgrp(0),"
    " os.getppid()), flush=True)\n"
)


def test_child_is_the_foreground_process_group_of_the_tty() -> None:
    """On a TTY the child gets its own process group, made the terminal's foreground group."""
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the forked test process execs at once
        try:
            attrs = termios.tcgetattr(0)
            attrs[3] |= termios.TOSTOP  # background writes would stop a careless init
            termios.tcsetattr(0, termios.TCSANOW, attrs)
            os.chdir(REPO)
            os.execve(PY, [*INIT, "-s", "-vv", "--", *child(TTY_REPORT)], init_env())
        finally:
            os._exit(127)
    try:
        output = Lines(master).rest()
    finally:
        os.close(master)
        deadline = time.monotonic() + DEADLINE
        while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            select.select([], [], [], 0.01)
        if status[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    found = re.search(r"pid=(\d+) pgrp=(\d+) fg=(\d+) parent=(\d+)", output)
    assert found, output
    child_pid, pgrp, foreground, parent = map(int, found.groups())
    assert parent == pid
    assert pgrp == child_pid != pid
    assert foreground == pgrp
    assert "Main child exited normally (with status '0')" in output  # not stopped by TOSTOP
    assert os.waitstatus_to_exitcode(status[1]) == 0


# --------------------------------------------------------------------- entry points


def test_help_and_version_as_a_command() -> None:
    """``-h`` and ``--version`` work from the command line and exit 0."""
    help_run = run_init(["-h"])
    assert (help_run.returncode, "Usage: envd init" in help_run.stdout) == (0, True)
    version_run = run_init(["--version"])
    assert version_run.returncode == 0
    assert version_run.stdout.strip().startswith("envd init version ")


def test_envd_init_subcommand_dispatches_here() -> None:
    """``python -m envd init`` reaches the same init (and exits with the child's code)."""
    result = subprocess.run(
        [PY, "-m", "envd", "init", "-s", "--", "sh", "-c", "exit 4"],
        cwd=REPO,
        env=init_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 4
