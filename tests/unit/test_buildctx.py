"""envd's reading of ``.dockerignore`` and the build-context digest that honours it.

The expected answers in the tables were checked against a real engine (a
``COPY . /c`` build with the same ``.dockerignore``, Docker 28 CLI): where the
engine and a plain reading of the patterns differ, the engine is right.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envd.inputs.buildctx import DockerIgnore, context_digest, parse_dockerignore

# (the .dockerignore lines, a context-relative path, whether it is left out)
IGNORED = [
    (["*.log"], "a.log", True),
    (["*.log"], "A.LOG", False),  # case-sensitive, as the engine
    (["*.log"], "d/a.log", False),  # "*" stays within one directory
    (["**/*.log"], "d/e/a.log", True),
    (["**/*.log"], "a.log", True),  # "**" is zero directories too
    (["node_modules"], "node_modules/x/y.js", True),  # a directory takes its subtree
    (["**/node_modules"], "src/lib/node_modules/pkg/i.js", True),
    (["a/**/z"], "a/z", True),
    (["a/**/z"], "a/b/c/z/w", True),
    (["a/**"], "a", False),
    (["a/**"], "a/b", True),
    (["[^k]*"], "keep", False),  # "^" negates a class, as in Go
    (["[^k]*"], "b^c", True),
    (["[a-c]?"], "b1", True),
    (["[a-c]?"], "d1", False),
    (["?"], "a", True),
    (["?"], "ab", False),
    (["\\*x"], "*x", True),  # a backslash escapes
    (["\\*x"], "ax", False),
    (["/abs//x/"], "abs/x", True),  # cleaned like Go's filepath.Clean, relative to the root
    (["a/../b"], "b", True),
    (["a/../b"], "a/b", False),
    (["."], "x", False),
    (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
    (["*.md", "!README*.md", "README-secret.md"], "README-x.md", False),
    (["*.md", "!README*.md", "README-secret.md"], "x.md", True),
    (["keep", "!keep/sub/x"], "keep/sub/x", False),
    (["keep", "!keep/sub/x"], "keep/y", True),
    (["*", "!keep/sub"], "keep/sub/x", False),
    (["*", "!keep/sub"], "keep/y", True),
    # An exception for a directory does not take back a file a later level matched:
    (["**/sub/x", "!keep/sub"], "keep/sub/x", True),
    (["**/sub/x", "!keep/sub"], "keep/sub/y", False),
    (["keep/sub/x", "!keep"], "keep/sub/x", True),
    # The engine does not enter an ignored directory for an exception that does
    # not name it, so the exception cannot take anything back inside it.
    (["node_modules", "!**/keep.txt"], "node_modules/keep.txt", True),
    (["node_modules", "!**/keep.txt"], "keep.txt", False),
    ([], "anything/at/all", False),
]


@pytest.mark.parametrize(("patterns", "path", "expected"), IGNORED)
def test_dockerignore_judges_paths_like_the_engine(
    patterns: list[str], path: str, expected: bool
) -> None:
    """Each pattern set leaves out exactly the paths the engine leaves out of a build context."""
    assert DockerIgnore(patterns).ignored(path) is expected


PARSED = [
    ("# comment\n*.log\n", ["*.log"]),
    ("  # not a comment\n", ["# not a comment"]),  # only a "#" in column one starts a comment
    ("\n   \n  *.tmp  \n", ["*.tmp"]),
    ("! keep \n!/abs\n", ["!keep", "!abs"]),
    ("/abs//x/\n./a/../b\n", ["abs/x", "b"]),
    ("\ufeffdist\n", ["dist"]),  # a byte-order mark is not part of the first pattern
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse_dockerignore_reads_lines_like_the_engine(text: str, expected: list[str]) -> None:
    """Comments, blank lines, whitespace, "!" and path cleaning are handled as the engine does."""
    assert parse_dockerignore(text) == expected


def _tree(root: Path, files: list[str], dockerignore: str) -> Path:
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / ".dockerignore").write_text(dockerignore)
    return root


def test_files_lists_what_the_engine_would_send(tmp_path: Path) -> None:
    """The walk keeps files and symlinks, enters ignored directories only for an exception."""
    ctx = _tree(
        tmp_path,
        ["keep/sub/x", "keep/y", "node_modules/keep.txt", "keep.txt", "a.log", "A.LOG"],
        "node_modules\n!**/keep.txt\nkeep\n!keep/sub/x\n*.log\n",
    )
    (ctx / "link").symlink_to("keep")
    kept = sorted(DockerIgnore.read(ctx).files(ctx))
    assert kept == [".dockerignore", "A.LOG", "Dockerfile", "keep.txt", "keep/sub/x", "link"]


def test_no_dockerignore_keeps_everything(tmp_path: Path) -> None:
    """A context without .dockerignore ignores nothing."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    assert not DockerIgnore.read(tmp_path).ignored("d/f")
    assert sorted(DockerIgnore.read(tmp_path).files(tmp_path)) == ["d/f"]


def _digest_changes(ctx: Path, rel: str, **kwargs: tuple[str, ...]) -> bool:
    before = context_digest(ctx, **kwargs)
    (ctx / rel).write_text("edited")
    return context_digest(ctx, **kwargs) != before


def test_digest_ignores_edits_to_dockerignored_files(tmp_path: Path) -> None:
    """Editing a file .dockerignore leaves out does not change the digest; a kept one does."""
    ctx = _tree(tmp_path, ["src/app.py", "build/out.o"], "build\n")
    assert not _digest_changes(ctx, "build/out.o")
    assert _digest_changes(ctx, "src/app.py")


def test_digest_is_case_sensitive_like_the_engine(tmp_path: Path) -> None:
    """`*.log` does not leave out A.LOG (the engine sends it), so editing it rebuilds."""
    ctx = _tree(tmp_path, ["A.LOG", "a.log"], "*.log\n")
    assert _digest_changes(ctx, "A.LOG")
    assert not _digest_changes(ctx, "a.log")


def test_digest_follows_the_engine_on_a_directory_exception(tmp_path: Path) -> None:
    """`keep/sub/x` then `!keep` still leaves keep/sub/x out, as the engine does."""
    ctx = _tree(tmp_path, ["keep/sub/x", "keep/sub/y"], "keep/sub/x\n!keep\n")
    assert not _digest_changes(ctx, "keep/sub/x")
    assert _digest_changes(ctx, "keep/sub/y")


def test_digest_survives_a_dockerignore_that_is_not_utf8(tmp_path: Path) -> None:
    """A Latin-1 byte in .dockerignore does not break the digest; the other lines still apply."""
    ctx = _tree(tmp_path, ["build/out.o", "src/app.py"], "")
    (ctx / ".dockerignore").write_bytes(b"# caf\xe9\nbuild\n")
    assert not _digest_changes(ctx, "build/out.o")
    assert _digest_changes(ctx, "src/app.py")


def test_digest_counts_the_dockerfile_even_when_dockerignore_names_it(tmp_path: Path) -> None:
    """The engine always receives the Dockerfile, so editing it changes the digest."""
    ctx = _tree(tmp_path, ["src/app.py"], "Dockerfile\n.dockerignore\n")
    assert _digest_changes(ctx, "Dockerfile")
    assert _digest_changes(ctx, ".dockerignore")


def test_digest_leaves_out_synced_paths(tmp_path: Path) -> None:
    """Files a sync rule copies live (``exclude``) do not force a rebuild."""
    ctx = _tree(tmp_path, ["src/app.py", "lib/util.py"], "")
    assert not _digest_changes(ctx, "src/app.py", exclude=("src",))
    assert _digest_changes(ctx, "lib/util.py", exclude=("src",))


def test_digest_covers_build_inputs_and_caches_by_fingerprint(tmp_path: Path) -> None:
    """Build args and target change the digest; the cached answer is reused until a file moves."""
    ctx = _tree(tmp_path / "ctx", ["src/app.py"], "")
    cache = tmp_path / "cache"
    plain = context_digest(ctx, cache_dir=cache)
    assert context_digest(ctx, args={"A": "1"}, cache_dir=cache) != plain
    assert context_digest(ctx, target="dev", cache_dir=cache) != plain
    assert context_digest(ctx, cache_dir=cache) == plain
    assert (cache / "build-digests.json").is_file()
    (ctx / "src" / "app.py").write_text("changed, and a different size")
    assert context_digest(ctx, cache_dir=cache) != plain
