"""`sc-ci --help` imports no command module; `sc-ci CMD …` only CMD's; the full parser has every command."""

from __future__ import annotations

import subprocess
import sys

from sc_ci import cli
from sc_ci.commands import router

PROBE = """
import sys
from sc_ci import cli
cli.main({argv!r})
loaded = sorted(m for m in sys.modules if m.startswith(("sc_ci.commands.", "sc_ci.engine", "pydantic")))
print("LOADED", ",".join(loaded))
"""


def _loaded(argv: list[str]) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True,
                          check=False, timeout=60)
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED"))
    return set(filter(None, line.split(" ", 1)[1].split(",")))


def test_top_level_help_imports_no_command_module() -> None:
    loaded = _loaded(["--help"])
    assert loaded <= {"sc_ci.commands.common", "sc_ci.commands.router"}, loaded


def test_a_command_imports_only_itself() -> None:
    loaded = _loaded(["tools", "--help"])
    assert "sc_ci.commands.tools" in loaded
    assert not {"sc_ci.commands.release", "sc_ci.commands.image", "sc_ci.engine.run"} & loaded, loaded


def test_full_parser_has_every_command_with_its_summary() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert tuple(sub.choices) == router.NAMES  # type: ignore[arg-type]
    helps = {c.dest: c.help for c in sub._choices_actions}  # type: ignore[attr-defined]
    assert helps == dict(router.COMMANDS)


def test_chosen() -> None:
    assert router.chosen(["-v", "image", "sign"]) == "image"
    assert router.chosen(["--help"]) == ""
    assert router.chosen(["relase"]) == ""
