"""Make untrusted text safe to echo: one bounded line for messages, inert lines for CI consoles."""

from __future__ import annotations

import re
import secrets as pysecrets

ELLIPSIS = "…"
#: what the GitHub runner treats as a workflow command once a line's leading whitespace is stripped
COMMAND_PREFIXES = ("::", "##[")
#: prefix that makes a would-be command line inert (the runner strips whitespace, not `>`)
INERT_PREFIX = "> "

# Line breaks the GitHub runner (.NET ReadLine) and Python's splitlines() recognise.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Everything a runner or terminal may treat as whitespace or as invisible, stripped before the prefix test.
_LEADING_BLANK = re.compile(r"^[\s\u180e\u200b-\u200f\u2060-\u2064\ufeff]*")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _is_unsafe(ch: str) -> bool:
    """Control characters (C0, DEL, C1), line/paragraph separators and bidi/zero-width format characters."""
    code = ord(ch)
    return (code < 0x20 or 0x7F <= code < 0xA0 or code in (0x2028, 0x2029, 0xFEFF)
            or 0x200B <= code <= 0x200F or 0x202A <= code <= 0x202E or 0x2060 <= code <= 0x2069)


def one_line(text: object, limit: int = 200) -> str:
    """`text` on one line: CR, LF, tabs and other control or invisible characters escaped (`\\n`,
    `\\x1b`, `\\u202e`), cut to at most `limit` characters (ending in `…` when cut); a result that
    would read as a workflow command gets the inert `> ` prefix."""
    return _inert(_bounded(text, limit))


def _bounded(text: object, limit: int) -> str:
    raw = text if isinstance(text, str) else str(text)
    limit = max(limit, 1)
    out: list[str] = []
    size = 0
    for ch in raw:
        piece = _escape_char(ch) if _is_unsafe(ch) else ch
        if size + len(piece) > limit:
            while out and size + len(ELLIPSIS) > limit:
                size -= len(out.pop())
            out.append(ELLIPSIS)
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _inert(line: str) -> str:
    return INERT_PREFIX + line if is_command_line(line) else line


def quoted(text: object, limit: int = 120) -> str:
    """`one_line(text)` in single quotes, for naming a user's value inside a message."""
    return "'" + _bounded(text, limit).replace("'", "\\'") + "'"


def is_command_line(line: str) -> bool:
    """Whether the GitHub runner would parse `line` as a workflow command (`::cmd::…` or `##[cmd]…`)."""
    stripped = _LEADING_BLANK.sub("", line)
    return stripped.startswith(COMMAND_PREFIXES)


def neutralize(text: object) -> str:
    """`text` for a CI console: every line that would be a workflow command is prefixed with `> `, other
    control characters (ESC, NUL, …) are escaped, and every kind of line break becomes `\\n`."""
    raw = text if isinstance(text, str) else str(text)
    lines = _LINE_BREAK.split(raw)
    out = []
    for line in lines:
        clean = "".join(_escape_char(ch) if _is_unsafe(ch) and ch != "\t" else ch for ch in line)
        out.append(INERT_PREFIX + clean if is_command_line(line) or is_command_line(clean) else clean)
    return "\n".join(out)


def stop_commands_token() -> str:
    """A fresh unguessable token for `::stop-commands::<token>` … `::<token>::`."""
    return pysecrets.token_hex(16)


def stop_commands_line(token: str) -> str:
    """The line that suspends workflow-command parsing until `resume_commands_line(token)`."""
    return f"::stop-commands::{token}"


def resume_commands_line(token: str) -> str:
    """The line that resumes workflow-command parsing after `stop_commands_line(token)`."""
    return f"::{token}::"


def fenced(text: object) -> str:
    """`text` neutralized and wrapped in stop-commands/resume lines with a fresh token (tool logs)."""
    token = stop_commands_token()
    return f"{stop_commands_line(token)}\n{neutralize(text)}\n{resume_commands_line(token)}"
