"""Keeps a hostile repository inside its project root: safe stack/environment names, confined paths, git facts."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from sc_ci.errors import ConfigError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
MAX_PROJECT_FILE = 4 * 1024 * 1024  # a client.yaml or compose file larger than this is refused unread
_MAX_GIT_FILE = 1024 * 1024
_GIT_REF = re.compile(r"refs/[A-Za-z0-9._/+-]{1,200}")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", "'": "\\'"}


def shown(value: object, limit: int = 80) -> str:
    """`value` quoted for an error message: control and format characters escaped, at most `limit` chars.

    Untrusted text (names, paths, messages from a repository) goes through this before it is printed,
    so it can neither start a line of its own (`::add-mask::`, `::set-output`) nor flood the log.
    """
    text = value if isinstance(value, str) else str(value)
    out: list[str] = []
    for char in text[: limit + 1]:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    body = "".join(out)
    if len(text) > limit:
        body = body[: max(limit, 1)] + f"…(+{len(text) - limit} chars)"
    return f"'{body}'"


def check_name(value: str, *, what: str, path: str) -> str:
    """A stack or environment name safe to use as a path component and an image-name part."""
    if NAME.fullmatch(value) and ".." not in value:
        return value
    raise ConfigError(
        f"{what} name {shown(value)} is not allowed",
        path=path,
        why=f"a {what} name is a directory name under .sc/stacks/ and part of image names: "
        "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters, no '..'",
        fix=f"rename the {what} (for example {_tame(value)!r})",
    )


def _tame(value: str) -> str:
    tamed = re.sub(r"[^A-Za-z0-9._-]+", "-", value).replace("..", ".").strip(".-_")[:63]
    return tamed or "app"


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, symlinks resolved, lies under `root` (symlinks resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(Path(os.path.realpath(root)))
    except ValueError:
        return False
    return True


def confine(path: Path, root: Path, *, what: str, key: str, where: str, regular: bool = True, fix: str = "") -> Path:
    """`path` with symlinks resolved, refused unless it stays under `root` (and, if `regular`, is a file).

    The refusal names the path as the repository wrote it (escaped), never the content of the target.
    """
    if not str(path).isprintable():  # a NUL byte never reaches the OS; a line break never reaches a log
        raise ConfigError(
            f"{what} {shown(str(path), 160)} has control characters in its name",
            path=key,
            why=f"in {where}; such names could forge lines in CI logs (and a NUL byte cannot name a file)",
            fix="rename the file to a plain name",
        )
    real = Path(os.path.realpath(path))
    if not str(real).isprintable():
        raise ConfigError(
            f"{what} {shown(str(path), 160)} has control characters in its name",
            path=key,
            why=f"in {where}; such names could forge lines in CI logs",
            fix="rename the file to a plain name",
        )
    if not inside(real, root):
        linked = _symlink_on(path, root)
        raise ConfigError(
            f"{what} {shown(str(path), 160)} is outside the project root",
            path=key,
            why=f"in {where}; "
            + (
                f"{shown(str(linked), 160)} is a symbolic link that leads out of {root}"
                if linked is not None
                else f"the path leaves {root} (an absolute path elsewhere, or '..')"
            )
            + "; files outside the project are never read",
            fix=fix
            or "keep the file inside the repository (a symbolic link may point only within it); if the "
            "project is a subdirectory of a larger checkout, run from the work-tree root",
        )
    if regular:
        try:
            info = real.stat()
        except FileNotFoundError:
            return real  # the reader reports "not found" with its own fix
        except OSError as exc:
            raise ConfigError(f"cannot read {what} {shown(str(path), 160)}: {exc.strerror or exc}", path=key) from exc
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"{what} {shown(str(path), 160)} is not a regular file",
                path=key,
                why=f"in {where}",
                fix=f"point {key} at a YAML file in the repository",
            )
        if info.st_size > MAX_PROJECT_FILE:
            raise ConfigError(
                f"{what} {shown(str(path), 160)} is too large ({info.st_size} bytes)",
                path=key,
                why=f"in {where}; at most {MAX_PROJECT_FILE} bytes are read",
                fix=f"point {key} at the real file",
            )
    return real


def _symlink_on(path: Path, root: Path) -> Path | None:
    """The first symlink on `path` at or below `root`, if one is what leads outside."""
    absolute = Path(os.path.abspath(path))
    try:
        parts = absolute.relative_to(Path(os.path.abspath(root))).parts
    except ValueError:
        return None
    current = Path(os.path.abspath(root))
    for part in parts:
        current = current / part
        if current.is_symlink():
            return current
    return None


# ---------------------------------------------------------------------------------------------- git


@dataclass(frozen=True)
class GitInfo:
    """What `${git:…}` placeholders read: the work-tree root, HEAD's commit and branch (None: unknown)."""

    root: Path
    commit: str | None = None
    branch: str | None = None
    found: bool = False  # False: no .git above the project; root is the project root


def git_info(start: Path) -> GitInfo:
    """The git work tree holding `start`, read from `.git` files (no git process, no repository config run).

    Like go-git's DetectDotGit (Simple Container's `git.Open`): walk up from `start` to the first `.git`.
    """
    begin = Path(os.path.realpath(start))
    for directory in (begin, *begin.parents):
        dot = directory / ".git"
        if dot.is_dir() or dot.is_file():
            gitdir = _gitdir(dot)
            if gitdir is None:
                return GitInfo(directory, found=True)
            commit, branch = _head(gitdir)
            return GitInfo(directory, commit, branch, found=True)
    return GitInfo(begin)


def _read_small(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_GIT_FILE + 1)
    except OSError:
        return None
    if len(data) > _MAX_GIT_FILE:
        return None
    return data.decode("utf-8", errors="replace")


def _gitdir(dot: Path) -> Path | None:
    if dot.is_dir():
        return dot
    text = _read_small(dot)  # a worktree or submodule: "gitdir: <path>"
    if not text or not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    target = target if target.is_absolute() else dot.parent / target
    return target if target.is_dir() else None


def _common(gitdir: Path) -> Path:
    text = _read_small(gitdir / "commondir")
    if not text:
        return gitdir
    common = Path(text.strip())
    common = common if common.is_absolute() else gitdir / common
    return common if common.is_dir() else gitdir


def _head(gitdir: Path) -> tuple[str | None, str | None]:
    head = (_read_small(gitdir / "HEAD") or "").strip()
    if _SHA.fullmatch(head):
        return head, _branch_at(gitdir, head)
    if not head.startswith("ref:"):
        return None, None
    ref = head[len("ref:") :].strip()
    if not _GIT_REF.fullmatch(ref) or ".." in ref:
        return None, None
    branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else None
    return _resolve_ref(gitdir, ref), branch


def _resolve_ref(gitdir: Path, ref: str) -> str | None:
    for base in dict.fromkeys((gitdir, _common(gitdir))):
        loose = (_read_small(base / ref) or "").strip()
        if _SHA.fullmatch(loose):
            return loose
        for sha, name in _packed(base):
            if name == ref:
                return sha
    return None


def _packed(base: Path) -> list[tuple[str, str]]:
    refs = []
    for line in (_read_small(base / "packed-refs") or "").splitlines():
        sha, _, name = line.partition(" ")
        if _SHA.fullmatch(sha) and _GIT_REF.fullmatch(name):
            refs.append((sha, name))
    return refs


def _branch_at(gitdir: Path, sha: str) -> str | None:
    """A detached HEAD: the branch pointing at it, if exactly one does (as Simple Container's repo.Branch)."""
    names: set[str] = set()
    for base in dict.fromkeys((gitdir, _common(gitdir))):
        heads = base / "refs" / "heads"
        if heads.is_dir():
            for path in heads.rglob("*"):
                if path.is_file() and not path.is_symlink() and (_read_small(path) or "").strip() == sha:
                    names.add(path.relative_to(heads).as_posix())
        names.update(n[len("refs/heads/") :] for s, n in _packed(base) if s == sha and n.startswith("refs/heads/"))
    return next(iter(names)) if len(names) == 1 else None
