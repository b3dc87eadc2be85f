"""The lean entry's stand-ins for stdlib and envd code compute what the originals compute.

To start in a few milliseconds the lean ``up --once`` and ``status`` avoid
``json``, ``re``, ``urllib``, ``hashlib``/``hmac``, ``pathlib`` and the
Docker-config reader; each stand-in is checked here against the code it
stands in for, on ordinary and awkward inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from envd.cli import _lean_args, _lean_read
from envd.cli.progress import JsonProgress, PlainProgress
from envd.inputs import keys as key_store
from envd.run import lock_file
from envd.spec import engine_host
from envd.spec.paths import resolve_paths
from envd.values import jsontext
from envd.values.events import Event
from envd.values.sha import Hmac, sha256

_DOCS: list[Any] = [
    {"a": [1, 2.5, None, True, False, {}], "é": 'ünï "q" \\ \n\t\u2028', "n": -0.0},
    {"z": 1, "a": {"y": [], "b": [[{}]]}, "big": 10**30, "f": 1e-7, "nan": float("nan")},
    [],
    {},
    "text",
    3,
    None,
]


@pytest.mark.parametrize("doc", _DOCS)
def test_jsontext_writes_what_json_writes(doc: Any) -> None:
    """Plain, canonical (sorted, compact) and indented text equal json.dumps's."""
    assert jsontext.dumps(doc) == json.dumps(doc)
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    assert jsontext.dumps(doc, canonical=True) == canonical
    assert jsontext.dumps_indented(doc) == json.dumps(doc, indent=2)


@pytest.mark.parametrize("doc", _DOCS[:-1])
def test_jsontext_reads_what_json_reads(doc: Any) -> None:
    """Text json wrote reads back to the value json.loads gives (bytes or str, padded)."""
    text = f" \n{json.dumps(doc)}\r\n"
    assert repr(jsontext.loads(text.encode())) == repr(json.loads(text))
    assert repr(jsontext.loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize(
    "bad", [b"", b" ", b"[1,", b"{} {}", b"[1] x", b"\xff", "\ufeff[]", b"nul"]
)
def test_jsontext_refuses_what_json_refuses(bad: bytes | str) -> None:
    """Empty, truncated, trailing or non-UTF-8 text is a ValueError (a miss), never a value."""
    with pytest.raises(ValueError):
        jsontext.loads(bad)


@pytest.mark.parametrize("key_size", [0, 1, 32, 63, 64, 65, 200])
def test_the_hmac_is_rfc_2104_as_the_stdlib_computes_it(key_size: int) -> None:
    """Hmac and sha256 give hmac.new(..., hashlib.sha256)'s and hashlib's digests."""
    key = bytes(range(256))[:key_size] * 1
    for msg in (b"", b"abc", os.urandom(1000)):
        h = Hmac(key)
        h.update(msg[:10])
        h.update(msg[10:])
        want = hmac.new(key, msg, hashlib.sha256)
        assert h.digest() == want.digest()
        assert Hmac(key, msg).hexdigest() == want.hexdigest()
        assert sha256(msg).hexdigest() == hashlib.sha256(msg).hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        "Up 5 minutes (healthy)",
        "Up 2 seconds (health: starting)",
        "Exited (137) 1 second ago",
        "Up 3 hours (Paused)",
        "a (b (c) d) (e)",
        "((x))",
        "(unclosed",
        ")(",
        "()",
        "",
        "x (a)(b)",
    ],
)
def test_the_status_parentheses_are_read_as_the_regex_reads_them(text: str) -> None:
    """parens() finds what re.findall(r"\\(([^()]*)\\)") finds."""
    assert _lean_read.parens(text) == re.findall(r"\(([^()]*)\)", text)


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ('{"label":["dev.envd.project=p"]}', "/"),
        ("registry:5000/ns/img@sha256:abc", "/:@"),
        ("ünï code & spaces?#%", "/"),
        ("a~b_c.d-e", ""),
    ],
)
def test_urls_are_quoted_as_urllib_quotes_them(text: str, safe: str) -> None:
    """quote() gives urllib.parse.quote's text for the filters and image names it quotes."""
    assert _lean_read.quote(text, safe) == urllib.parse.quote(text, safe=safe)


@pytest.mark.parametrize(
    ("project_dir", "file"),
    [
        (None, None),
        ("d", None),
        ("/abs/d", None),
        (".", None),
        ("..", None),
        ("a/../b", None),
        (None, "x.toml"),
        (None, "sub/x.toml"),
        ("d", "x.toml"),
        ("d", "/abs/x.toml"),
        ("/abs", "sub/x.toml"),
    ],
)
def test_the_lean_paths_are_spelled_as_resolve_paths_spells_them(
    project_dir: str | None, file: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lean entry's (spec file, project dir) strings equal resolve_paths's."""
    monkeypatch.chdir(tmp_path)
    spec_file, base = resolve_paths(project_dir, file)
    assert _lean_args.resolve_paths(project_dir, file) == (str(spec_file), str(base))


@pytest.mark.parametrize(
    ("project_dir", "file"), [("./d", None), ("d/", None), ("d//e", None), (None, "./x.toml")]
)
def test_a_path_pathlib_would_respell_takes_the_full_path(
    project_dir: str | None, file: str | None
) -> None:
    """Dot parts and doubled or trailing slashes are left to the full path (None)."""
    assert _lean_args.resolve_paths(project_dir, file) is None


def _config(tmp_path: Path, doc: Any) -> dict[str, str]:
    (tmp_path / ".docker").mkdir(exist_ok=True)
    (tmp_path / ".docker" / "config.json").write_text(json.dumps(doc))
    return {"HOME": str(tmp_path)}


def test_the_common_engines_are_found_as_engine_host_finds_them(tmp_path: Path) -> None:
    """No setting, a config without a current context and a plain unix DOCKER_HOST give
    engine_host.resolve's host and socket, without loading it."""
    cases = [
        {"HOME": str(tmp_path / "nowhere")},
        _config(tmp_path, {"auths": {}}),
        _config(tmp_path, {"currentContext": ""}),
        {"HOME": str(tmp_path), "DOCKER_HOST": "unix:///run/user/1000/docker.sock"},
        {"HOME": str(tmp_path), "DOCKER_HOST": "unix:///var/run/docker.sock", "DOCKER_TLS": "0"},
    ]
    for environ in cases:
        want = engine_host.resolve(environ)
        assert _lean_read._plain_unix_host(environ) == want.host
        assert _lean_read.engine_socket(environ) == (want.host, want.unix_path)


def test_any_other_engine_setting_is_asked_of_engine_host(tmp_path: Path) -> None:
    """A context, TLS, another scheme or an odd path is engine_host's to resolve."""
    cases = [
        _config(tmp_path, {"currentContext": "remote"}),
        {"HOME": str(tmp_path), "DOCKER_CONTEXT": "default"},
        {"HOME": str(tmp_path), "DOCKER_HOST": "tcp://127.0.0.1:2375"},
        {"HOME": str(tmp_path), "DOCKER_HOST": "unix://relative/sock"},
        {"HOME": str(tmp_path), "DOCKER_HOST": "unix:///a b/sock"},
        {"HOME": str(tmp_path), "DOCKER_HOST": "unix:///sock", "DOCKER_TLS_VERIFY": "1"},
        _config(tmp_path, ["not", "an", "object"]),
    ]
    for environ in cases:
        assert _lean_read._plain_unix_host(environ) is None


def test_the_witnessed_events_print_as_progress_prints_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain lines and JSON lines equal PlainProgress's and JsonProgress's for the same events."""
    events = [
        ["ready", "service a", "ready", "done", "a"],
        ["completed", "service job", "", "done", "job"],
        ["skipped", "service b", "profile off", "info", ""],
    ]
    w = {"warnings": ["w1"], "events": events, "project": "p", "services": {"a": "ready"}}
    monkeypatch.setattr("time.time", lambda: 1234.5)
    _lean_read._print(w, False)
    lean_plain = capsys.readouterr()
    _lean_read._print(w, True)
    lean_json = capsys.readouterr()
    plain, as_json = PlainProgress(), JsonProgress()
    for kind, resource, message, phase, service in events:
        ev = Event(kind, resource, message, phase, service, time=1234.5)  # type: ignore[arg-type]
        plain(ev)
        as_json(ev)
    out, err = capsys.readouterr()
    assert lean_plain.err == "w1\n" + err + "Project p is up: 1 service(s) ready.\n"
    result = json.dumps({"result": "ok", "project": "p", "services": {"a": "ready"}})
    assert lean_json.out == out + result + "\n"


@pytest.mark.parametrize(
    "project", ["web", "a" * 101, "a" * 102, "-x", "_x", "My.App_1-2", "ünï", "a b", ""]
)
def test_the_lock_file_is_named_as_before(project: str) -> None:
    """A plain project name (the old regex) is its own file name, anything else a digest."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}", project):
        assert lock_file.file_name(project) == f"{project}.lock"
    else:
        digest = hashlib.sha256(project.encode()).hexdigest()[:24]
        assert lock_file.file_name(project) == f"project-{digest}.lock"


@pytest.mark.parametrize(
    "text",
    [
        "a" * 64,
        "A0" * 32,
        "a" * 63,
        "g" * 64,
        "QUJD" * 11,
        "QUJD" * 11 + "==",
        "QUJD" * 11 + "===",
        "ab=c" * 11,
        "===",
        "",
        " " + "a" * 64,
        "+/_-" * 11,
    ],
)
def test_the_env_key_is_judged_as_the_regexes_judged_it(text: str) -> None:
    """ENVD_HASH_KEY: hex or base64 (the old regexes) of enough length passes, else refused."""
    hexed = re.fullmatch(r"[0-9a-fA-F]+", text.strip())
    based = re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", text.strip())
    stripped = text.strip()
    ok = bool(hexed and len(stripped) >= 64) or bool(
        not hexed and based and len(stripped.rstrip("=")) >= 43
    )
    if ok:
        key_store.check_env_key(text)
    else:
        with pytest.raises(key_store.HashKeyRefused):
            key_store.check_env_key(text)


@pytest.mark.parametrize(
    "data", [b"a" * 64, b"a" * 64 + b"\n", b"a" * 64 + b"\n\n", b"a" * 63, b"g" * 64, b"\xff" * 64]
)
def test_the_key_file_is_judged_as_the_regex_judged_it(data: bytes) -> None:
    """A key file holds 64 hex digits and at most one newline (the old regex)."""
    assert key_store._hex_key(data) == bool(re.fullmatch(rb"[0-9a-fA-F]{64}\n?", data))


def test_questions_asked_side_by_side_are_answered_in_the_order_asked(tmp_path: Path) -> None:
    """get_all sends every GET before reading any answer and returns the answers in order;
    a socket nobody serves is a WireError (the full path's to word)."""
    import socketserver
    import threading

    from envd.cli._lean_wire import WireError, get_all

    second_asked = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            url = self.rfile.readline().decode().split(" ")[1]
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            body = url.encode()
            if url == "/second":
                second_asked.set()
            # The first answer waits for the second question: a client that read
            # it before asking the second would get "one by one".
            elif not second_asked.wait(10):
                body = b"one by one"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    path = str(tmp_path / "s.sock")
    server = Server(path, Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answers = get_all(path, ["/first", "/second", "/third"])
        assert [a.body for a in answers] == [b"/first", b"/second", b"/third"]
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(WireError):
        get_all(str(tmp_path / "nobody.sock"), ["/x"])
