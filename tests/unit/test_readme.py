"""The README's set-up commands and .ci/run stay in step."""

import re

from tests.conftest import ROOT


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)


def test_readme_gives_exactly_two_setup_commands_and_ci_runs_the_second() -> None:
    commands = _commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[1] in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_main_command_uses_sample_docs_and_the_embedded_default() -> None:
    main_command = _commands()[0]
    assert "pip install -e ." in main_command and "sample_docs" in main_command
    assert "OPENAI" not in main_command and "--chroma-host" not in main_command
