"""``envd init``: a tiny init for PID 1, a work-alike of tini (Docker's docker-init).

It spawns one command, forwards the signals it receives to it, reaps every
zombie that ends up as its child, and exits with the command's exit code
(``128 + N`` when the command was killed by signal ``N``).  Options,
environment variables, messages and exit codes follow tini 0.19; the few
deliberate differences are listed in ``docs/init.md``.

Only the standard library is used, and only what is cheap to import: the
``_signal`` builtin instead of ``signal`` (which imports ``enum``), and
``ctypes`` only when ``prctl(2)`` is actually needed.  The module imports
nothing from envd, so it also works as a single file copied into an image.

Usage: ``python -m envd.init [OPTIONS] -- PROGRAM [ARGS...]``.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # the ``signal`` stubs describe ``_signal`` too, minus the enums
    import signal as _signal
    from collections.abc import Callable, Iterator, Mapping
    from types import FrameType
    from typing import Any, NoReturn, TypeAlias

    Handler: TypeAlias = Callable[[int, FrameType | None], Any] | int | _signal.Handlers | None
else:
    import _signal

PROG = "envd init"
DEFAULT_VERBOSITY = 1
STATUS_MAX = 255
WAIT_TIMEOUT = 1.0  # seconds; sigtimedwait wakes up at least this often to reap

SUBREAPER_ENV = "TINI_SUBREAPER"
KILL_PROCESS_GROUP_ENV = "TINI_KILL_PROCESS_GROUP"
VERBOSITY_ENV = "TINI_VERBOSITY"
OPTSTRING = "p:hvwgle:s"  # tini's getopt(3) option string

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

SIGCHLD = _signal.SIGCHLD
SIG_DFL = _signal.SIG_DFL
SIG_IGN = _signal.SIG_IGN

# The names ``-p`` accepts, spelled exactly as tini spells them.
PDEATH_SIGNAL_NAMES = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGCHLD",
    "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ",
    "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGSYS",
)  # fmt: skip

# Signals the init never forwards: SIGCHLD triggers reaping, SIGTTIN/SIGTTOU are
# ignored (the init may lose the foreground of its tty, see tini), and SIGKILL/SIGSTOP
# cannot be caught at all.
NOT_FORWARDED = frozenset(
    {SIGCHLD, _signal.SIGTTIN, _signal.SIGTTOU, _signal.SIGKILL, _signal.SIGSTOP}
)

REAPER_WARNING = (
    "envd init is not running as PID 1 and isn't registered as a child subreaper.\n"
    "Zombie processes will not be re-parented to envd init, so zombie reaping won't work.\n"
    "To fix the problem, use the -s option or set the environment variable "
    f"{SUBREAPER_ENV} to register envd init as a child subreaper, or run envd init as PID 1."
)

LICENSE = (
    "envd init is part of envd, licensed under the Apache License, Version 2.0.\n"
    "See https://www.apache.org/licenses/LICENSE-2.0\n"
)


def version() -> str:
    """The envd version, read from the already-imported package when there is one."""
    package = sys.modules.get("envd")
    return str(getattr(package, "__version__", "unknown"))


def version_line() -> str:
    return f"{PROG} version {version()} (tini 0.19 compatible)\n"


def usage() -> str:
    return (
        f"{PROG} ({PROG} version {version()})\n"
        f"Usage: {PROG} [OPTIONS] PROGRAM -- [ARGS] | --version\n\n"
        f"Execute a program under the supervision of a valid init process ({PROG})\n\n"
        "Command line options:\n\n"
        "  --version: Show version and exit.\n"
        "  -h: Show this help message and exit.\n"
        "  -s: Register as a process subreaper (requires Linux >= 3.4).\n"
        '  -p SIGNAL: Trigger SIGNAL when parent dies, e.g. "-p SIGKILL".\n'
        "  -v: Generate more verbose output. Repeat up to 3 times.\n"
        "  -w: Print a warning when processes are getting reaped.\n"
        "  -g: Send signals to the child's process group.\n"
        "  -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0 (can be repeated).\n"
        "  -l: Show license and exit.\n\n"
        "Environment variables:\n\n"
        f"  {SUBREAPER_ENV}: Register as a process subreaper (requires Linux >= 3.4).\n"
        f"  {VERBOSITY_ENV}: Set the verbosity level (default: {DEFAULT_VERBOSITY}).\n"
        f"  {KILL_PROCESS_GROUP_ENV}: Send signals to the child's process group.\n\n"
    )


# --------------------------------------------------------------------------- output


def _write(fd: int, text: str) -> None:
    """Write all of ``text`` to ``fd`` unbuffered; an init must not die of a closed stdout."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "backslashreplace")
    try:
        while data:
            data = data[os.write(fd, data) :]
    except OSError:
        pass


def _line(level: str, message: str) -> str:
    return f"[{level:<5} {PROG} ({os.getpid()})] {message}\n"


class Log:
    """tini's levels: FATAL and WARN go to stderr, INFO/DEBUG/TRACE to stdout."""

    __slots__ = ("verbosity",)

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity

    def fatal(self, message: str) -> None:
        _write(2, _line("FATAL", message))

    def warning(self, message: str) -> None:
        if self.verbosity > 0:
            _write(2, _line("WARN", message))

    def info(self, message: str) -> None:
        if self.verbosity > 1:
            _write(1, _line("INFO", message))

    def debug(self, message: str) -> None:
        if self.verbosity > 2:
            _write(1, _line("DEBUG", message))

    def trace(self, message: str) -> None:
        if self.verbosity > 3:
            _write(1, _line("TRACE", message))


# ------------------------------------------------------------------ argument parsing


class Options:
    """What the command line and the TINI_* environment variables ask for."""

    __slots__ = (
        "command",
        "expect_status",
        "kill_process_group",
        "parent_death_signal",
        "subreaper",
        "verbosity",
        "warn_on_reap",
    )

    def __init__(self) -> None:
        self.command: list[str] = []
        self.subreaper = 0
        self.kill_process_group = 0
        self.warn_on_reap = 0
        self.verbosity = DEFAULT_VERBOSITY
        self.expect_status: set[int] = set()
        self.parent_death_signal = 0


class UsageExit(Exception):
    """Parsing ended without a command to run: print ``out``/``err`` and exit ``code``."""

    def __init__(self, code: int, out: str = "", err: str = "") -> None:
        super().__init__(code, out, err)
        self.code = code
        self.out = out
        self.err = err


def getopt(
    args: list[str], optstring: str, operands: list[str], posix: bool
) -> Iterator[tuple[str, str]]:
    """Yield ``(option, argument)`` like glibc getopt(3), appending operands to ``operands``.

    As in glibc (and therefore tini), operands are permuted to the end unless ``posix``
    (POSIXLY_CORRECT) is set, ``--`` ends the options, and an error is yielded as
    ``("?", message)`` at the place getopt would report it.
    """
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            operands.extend(args[i:])
            return
        if arg == "-" or not arg.startswith("-"):
            if posix:
                operands.append(arg)
                operands.extend(args[i:])
                return
            operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            char = arg[j]
            j += 1
            where = optstring.find(char)
            if char == ":" or where < 0:
                yield "?", f"{PROG}: invalid option -- '{char}'\n"
                continue
            if optstring[where + 1 : where + 2] != ":":
                yield char, ""
                continue
            if j < len(arg):
                yield char, arg[j:]
            elif i < len(args):
                yield char, args[i]
                i += 1
            else:
                yield "?", f"{PROG}: option requires an argument -- '{char}'\n"
            break


def c_atoi(text: str) -> int:
    """atoi(3): optional blanks and sign, then digits; 0 when there are none."""
    text = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = 0
    for char in text:
        if not "0" <= char <= "9":
            break
        digits = digits * 10 + ord(char) - 48
    return sign * digits


def parse_exit_status(text: str) -> int | None:
    """What ``-e`` accepts: strtol(3) over the whole argument, within 0..255."""
    body = text.lstrip(" \t\n\v\f\r")
    if text == "":
        return 0  # strtol("") consumes nothing and leaves *endptr == '\0': tini accepts it
    unsigned = body[1:] if body[:1] in ("+", "-") else body
    if not unsigned or not all("0" <= char <= "9" for char in unsigned):
        return None
    value = c_atoi(body)
    return value if 0 <= value <= STATUS_MAX else None


def parse_args(argv: list[str], environ: Mapping[str, str]) -> Options:
    """Parse the command line then the environment, exactly in tini's order.

    Raises UsageExit for ``--version``, ``-h``, ``-l``, bad options and a missing
    command, carrying what to print and the exit code (0 for help, 1 for errors).
    """
    if argv == ["--version"]:  # tini only honours --version as the sole argument
        raise UsageExit(0, out=version_line())
    options = Options()
    operands: list[str] = []
    for option, value in getopt(argv, OPTSTRING, operands, "POSIXLY_CORRECT" in environ):
        if option == "h":
            raise UsageExit(0, out=usage())
        if option == "s":
            options.subreaper += 1
        elif option == "p":
            if value not in PDEATH_SIGNAL_NAMES:
                raise UsageExit(1, err=_line("FATAL", f"Not a valid option for -p: {value}"))
            options.parent_death_signal = int(getattr(_signal, value))
        elif option == "v":
            options.verbosity += 1
        elif option == "w":
            options.warn_on_reap += 1
        elif option == "g":
            options.kill_process_group += 1
        elif option == "e":
            status = parse_exit_status(value)
            if status is None:
                raise UsageExit(1, err=_line("FATAL", f"Not a valid option for -e: {value}"))
            options.expect_status.add(status)
        elif option == "l":
            raise UsageExit(0, out=LICENSE)
        else:
            raise UsageExit(1, err=value + usage())
    if not operands:
        raise UsageExit(1, err=usage())
    options.command = operands
    if SUBREAPER_ENV in environ:
        options.subreaper += 1
    if KILL_PROCESS_GROUP_ENV in environ:
        options.kill_process_group += 1
    if VERBOSITY_ENV in environ:
        options.verbosity = c_atoi(environ[VERBOSITY_ENV]) % 2**32  # an unsigned int in tini
    return options


# ------------------------------------------------------------------------ prctl(2)


def _prctl(option: int, arg: int = 0) -> int:
    """Call prctl(2) through libc; returns the int PR_GET_* options write, raises OSError."""
    import ctypes  # 5 ms: only paid with -s, -p, or the not-PID-1 check

    libc = ctypes.CDLL(None, use_errno=True)
    out = ctypes.c_int(0)
    second = ctypes.byref(out) if option == PR_GET_CHILD_SUBREAPER else ctypes.c_ulong(arg)
    zero = ctypes.c_ulong(0)
    if libc.prctl(ctypes.c_int(option), second, zero, zero, zero) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return out.value


# ------------------------------------------------------------------------ the child


def execvp(file: str, args: list[str]) -> None:
    """execvp(3) as glibc does it: PATH search, EACCES remembered, ENOEXEC run by /bin/sh.

    Only returns by raising the OSError that decides the exit status (ENOENT: 127,
    EACCES: 126), so that behaviour matches tini's call to the C library.
    """

    def attempt(path: str) -> None:
        try:
            os.execv(path, args)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            os.execv("/bin/sh", ["/bin/sh", path, *args[1:]])

    if not file:
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
    if "/" in file:
        attempt(file)
    search = os.environ.get("PATH")
    if search is None:
        search = "/bin:/usr/bin"  # confstr(_CS_PATH), glibc's default
    saw_eacces = False
    last: OSError = OSError(errno.ENOENT, os.strerror(errno.ENOENT))
    for directory in search.split(":"):
        try:
            attempt(os.path.join(directory, file) if directory else file)
        except OSError as exc:
            if exc.errno == errno.EACCES:
                saw_eacces = True
            elif exc.errno not in (
                errno.ENOENT, errno.ESTALE, errno.ENOTDIR, errno.ENODEV,
                errno.EHOSTDOWN, errno.ETIMEDOUT,
            ):  # fmt: skip
                raise
            last = exc
    if saw_eacces:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))
    raise last


# ----------------------------------------------------------------------- the init


class Init:
    """One run of the init: configure signals, spawn the command, supervise it."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.log = Log(options.verbosity)
        self.wait_set: set[int] = set()
        self.child_mask: set[int] = set()
        self.saved_handlers: dict[int, Handler] = {}
        self.registered_subreaper = False
        self.parent_pid = os.getppid()
        self.child_pid = -1
        self.exit_code = -1  # not a valid status: the main child has not been reaped yet

    # setup -------------------------------------------------------------------

    def configure_signals(self) -> None:
        """Block everything the loop collects and ignore SIGTTIN/SIGTTOU, like tini.

        Unlike tini, the synchronous signals (SIGSEGV, SIGABRT...) are blocked and
        forwarded too: a Python process never handles them itself, and a real fault
        while they are blocked still kills the process, as the kernel forces them.
        """
        unwaited = NOT_FORWARDED - {SIGCHLD}
        self.wait_set = {
            int(signum) for signum in _signal.valid_signals() if signum not in unwaited
        }
        old_mask = _signal.pthread_sigmask(_signal.SIG_SETMASK, self.wait_set)
        self.child_mask = {int(signum) for signum in old_mask}
        for signum in (_signal.SIGTTIN, _signal.SIGTTOU):
            self.saved_handlers[signum] = _signal.signal(signum, SIG_IGN)
        if _signal.getsignal(SIGCHLD) == SIG_IGN:
            # Inherited SIG_IGN would make the kernel reap for us, hiding the exit code.
            self.saved_handlers[SIGCHLD] = _signal.signal(SIGCHLD, SIG_DFL)

    def set_parent_death_signal(self) -> bool:
        signum = self.options.parent_death_signal
        try:
            _prctl(PR_SET_PDEATHSIG, signum)
        except OSError as exc:
            self.log.fatal(f"Failed to set up parent death signal: {exc.strerror}")
            return False
        if os.getppid() != self.parent_pid:  # it died before prctl: deliver it ourselves
            os.kill(os.getpid(), signum)
        return True

    def register_subreaper(self) -> bool:
        try:
            _prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                self.log.fatal(
                    "PR_SET_CHILD_SUBREAPER is unavailable on this platform. "
                    "Are you using Linux >= 3.4?"
                )
            else:
                self.log.fatal(f"Failed to register as child subreaper: {exc.strerror}")
            return False
        self.registered_subreaper = True
        self.log.trace("Registered as child subreaper")
        return True

    def reaper_check(self) -> None:
        """Warn when orphans will not be re-parented to us (neither PID 1 nor subreaper)."""
        if os.getpid() == 1 or self.registered_subreaper or self.log.verbosity < 1:
            return
        try:
            if _prctl(PR_GET_CHILD_SUBREAPER) == 1:
                return
        except OSError as exc:
            self.log.debug(f"Failed to read child subreaper attribute: {exc.strerror}")
        self.log.warning(REAPER_WARNING)

    # the child ---------------------------------------------------------------

    def spawn(self) -> int:
        command = self.options.command
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = self.exec_child(command)
            except BaseException as exc:  # never run the parent's code in the child
                self.log.fatal(f"exec {command[0]} failed: {exc!r}")
            finally:
                os._exit(code)
        try:
            os.setpgid(pid, pid)  # also here, so that -g cannot race the child's own setpgid
        except OSError:
            pass  # the child already did it, or already exec'ed
        self.log.info(f"Spawned child process '{command[0]}' with pid '{pid}'")
        return pid

    def exec_child(self, command: list[str]) -> int:
        """In the forked child: isolate, restore signals, exec; returns the failure status."""
        try:
            os.setpgid(0, 0)
        except OSError as exc:
            self.log.fatal(f"setpgid failed: {exc.strerror}")
            return 1
        # SIGTTOU is still ignored here, so a background child may take the terminal.
        try:
            os.tcsetpgrp(0, os.getpgrp())
        except OSError as exc:
            if exc.errno == errno.ENOTTY:
                self.log.debug("tcsetpgrp failed: no tty (ok to proceed)")
            elif exc.errno == errno.ENXIO:
                self.log.debug("tcsetpgrp failed: no such device (ok to proceed)")
            elif exc.errno == errno.EBADF:
                self.log.debug("tcsetpgrp failed: stdin is closed (ok to proceed)")
            else:
                self.log.fatal(f"tcsetpgrp failed: {exc.strerror}")
                return 1
        self.restore_signals()
        try:
            execvp(command[0], command)
        except OSError as exc:
            self.log.fatal(f"exec {command[0]} failed: {exc.strerror}")
            return {errno.ENOENT: 127, errno.EACCES: 126}.get(exc.errno or 0, 1)
        return 1  # pragma: no cover - execvp only returns by raising

    def restore_signals(self) -> None:
        """Give the child the signal state the init itself was started with.

        Handlers first (still blocked, so nothing is delivered halfway): the ones we
        changed, SIGPIPE/SIGXFSZ that the Python runtime ignores, and Python-level
        handlers such as SIGINT's; then the original mask.
        """
        for signum, handler in self.saved_handlers.items():
            if handler is not None:
                _signal.signal(signum, handler)
        for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):
            _signal.signal(signum, SIG_DFL)
        for signum in _signal.valid_signals():
            if callable(_signal.getsignal(signum)):
                _signal.signal(signum, SIG_DFL)
        _signal.pthread_sigmask(_signal.SIG_SETMASK, self.child_mask)

    # the loop ----------------------------------------------------------------

    def wait_and_forward(self) -> None:
        info = _signal.sigtimedwait(self.wait_set, WAIT_TIMEOUT)
        if info is None:
            return
        signum = info.si_signo
        if signum == SIGCHLD:
            self.log.debug("Received SIGCHLD")
            return
        if self.log.verbosity > 2:  # the hot path: no formatting unless it is printed
            self.log.debug(f"Passing signal: '{_signal.strsignal(signum)}'")
        target = -self.child_pid if self.options.kill_process_group else self.child_pid
        try:
            os.kill(target, signum)
        except ProcessLookupError:
            self.log.warning("Child was dead when forwarding signal")

    def reap_zombies(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.log.trace("No child to wait")
                if self.exit_code < 0:
                    self.log.fatal("No child left, but the main child's exit was never seen")
                    self.exit_code = 1
                return
            if pid == 0:
                self.log.trace("No child to reap")
                return
            if self.log.verbosity > 2:
                self.log.debug(f"Reaped child with pid: '{pid}'")
            if pid == self.child_pid:
                self.exit_code = self.child_exit_code(status)
            elif self.options.warn_on_reap:
                self.log.warning(f"Reaped zombie process with pid={pid}")

    def child_exit_code(self, status: int) -> int:
        if os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            if self.log.verbosity > 1:
                self.log.info(f"Main child exited normally (with status '{code}')")
        elif os.WIFSIGNALED(status):
            signum = os.WTERMSIG(status)
            if self.log.verbosity > 1:
                name = _signal.strsignal(signum)
                self.log.info(f"Main child exited with signal (with signal '{name}')")
            code = 128 + signum  # what sh and bash report
        else:
            self.log.fatal("Main child exited for unknown reason")
            return 1
        code %= STATUS_MAX + 1
        return 0 if code in self.options.expect_status else code

    def supervise(self) -> int:
        """Forward signals and reap until the main child is gone; survive our own bugs."""
        failures = 0
        while self.exit_code < 0:
            try:
                self.wait_and_forward()
                self.reap_zombies()
                failures = 0
            except Exception as exc:  # an init that dies takes its whole container with it
                failures += 1
                self.log.fatal(f"Unexpected error ({type(exc).__name__}: {exc}); carrying on")
                self.back_off(failures)
        self.log.trace("Exiting: child has exited")
        return self.exit_code

    @staticmethod
    def back_off(failures: int) -> None:
        """Keep a persistent failure from turning into a busy loop."""
        try:
            import time  # a builtin module: no file to load

            time.sleep(min(1.0, 0.01 * 2**failures))
        except Exception:
            pass

    def run(self) -> int:
        try:
            self.configure_signals()
        except (OSError, ValueError) as exc:
            self.log.fatal(f"Configuring signals failed: {exc}")
            return 1
        if self.options.parent_death_signal and not self.set_parent_death_signal():
            return 1
        if self.options.subreaper and not self.register_subreaper():
            return 1
        self.reaper_check()
        try:
            self.child_pid = self.spawn()
        except OSError as exc:
            self.log.fatal(f"fork failed: {exc.strerror}")
            return 1
        return self.supervise()


def main(argv: list[str]) -> int:
    """Run ``envd init`` with ``argv`` (without the program name); returns the exit status."""
    try:
        options = parse_args(argv, os.environ)
    except UsageExit as done:
        _write(1, done.out)
        _write(2, done.err)
        return done.code
    return Init(options).run()


def run(argv: list[str]) -> NoReturn:
    """``main(argv)``, then exit at once, skipping the interpreter's teardown.

    Finalizing the interpreter takes longer (~2 ms) than everything the init does
    after its child dies, and the init's parent (``docker stop``) waits for it.
    Nothing of ours is buffered: all output goes through os.write.
    """
    status = main(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


if __name__ == "__main__":
    run(sys.argv[1:])
