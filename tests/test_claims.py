"""Claims files: parsing and validation, rendering, and the check that a command parses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.claim_commands import check_command, split_command, tox_environments
from embedlab.claims import (
    BEGIN_MARK,
    END_MARK,
    Claim,
    ClaimsError,
    generated_block,
    parse_claims,
    render_markdown,
    replace_generated,
)
from embedlab.cli import main


@pytest.fixture(autouse=True)
def _no_plugin_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's parser without plugin subcommands: building it then imports no plugin."""
    monkeypatch.setattr("embedlab.cli._add_plugin_commands", lambda subparsers: None)


GOOD = '''
format = 1
paper = "Someone et al., Venue 2024"

[[claims]]
id = "first"
what = "it works"
paper_number = "0.50"
paper_setting = "big data"
ours = "0.49"
dataset = "small data"
command = "python bench.py --n 3"
status = "partly"
why = "smaller data"

[[claims]]
id = "fast"
what = "it is fast"
paper = "another paper"
paper_number = "2x"
paper_setting = "GPU"
ours = "1.5x"
dataset = "small data"
command = "python bench.py"
status = "reproduced"
why = "same kernel"
speed = true
load = "6.1-9"
headline = false
'''


def claims(text: str = GOOD) -> list[Claim]:
    return parse_claims(text, "demo", "demo/claims.toml")


def test_fields_defaults_and_speed_flags() -> None:
    first, fast = claims()
    assert (first.plugin, first.paper, first.status, first.headline) == ("demo", "Someone et al., Venue 2024",
                                                                         "partly", True)
    assert not first.rerun_quiet and first.status_text == "partly"
    assert fast.paper == "another paper" and not fast.headline
    assert fast.rerun_quiet and fast.status_text == "reproduced (under load 6.1-9, to be rerun quiet)"
    quiet = claims(GOOD.replace('load = "6.1-9"', 'load = "0.4-1.2"'))[1]
    assert not quiet.rerun_quiet and quiet.status_text == "reproduced (load 0.4-1.2)"
    assert claims(GOOD.replace('load = "6.1-9"', 'load = "unknown"'))[1].rerun_quiet


@pytest.mark.parametrize(("edit", "message"), [
    (("format = 1", "format = 2"), "format = 1"),
    (('status = "partly"', 'status = "mostly"'), "is not one of reproduced, partly"),
    (('ours = "0.49"', 'ours = ""'), "`ours` must be a non-empty string"),
    (('ours = "0.49"', 'ours = 0.49'), "`ours` must be a non-empty string"),
    (('ours = "0.49"\n', ''), "missing ours"),
    (('why = "smaller data"', 'why = "x"\nwhy_not = "y"'), "unknown key(s) why_not"),
    (('id = "first"', 'id = "First Claim"'), "`id` must be lowercase"),
    (('id = "first"', 'id = "fast"'), "appears twice"),
    (('command = "python bench.py --n 3"', 'command = "python a.py && rm -rf x"'), "one command on one line"),
    (('command = "python bench.py --n 3"', 'command = "python a.py > out"'), "one command on one line"),
    (('command = "python bench.py --n 3"', "command = \"python 'a.py\""), "does not parse"),
    (('load = "6.1-9"', 'load = ""'), "must state the load average"),
    (('speed = true', 'speed = "yes"'), "`speed` must be true or false"),
    (("format = 1", "format = = 1"), "not valid TOML"),
])
def test_malformed_files_are_rejected_with_the_reason(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(ClaimsError, match=None) as error:
        claims(GOOD.replace(*edit, 1))
    assert message in str(error.value) and "demo" in str(error.value)


def test_a_file_needs_at_least_one_claim() -> None:
    with pytest.raises(ClaimsError, match="no \\[\\[claims\\]\\] table"):
        claims("format = 1\n")


def test_markdown_table_and_generated_block() -> None:
    table = render_markdown([c for c in claims() if c.headline])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[0].startswith("| plugin | claim |")
    assert lines[2] == ("| demo | it works | Someone et al., Venue 2024: 0.50 (big data) | 0.49 (small data) | "
                        "**partly** | smaller data | `python bench.py --n 3` |")
    document = f"# Title\n\nintro\n{BEGIN_MARK}\nold table\n{END_MARK}\n\nrest\n"
    updated = replace_generated(document, table)
    assert generated_block(updated) == table and updated.endswith(f"{END_MARK}\n\nrest\n")
    assert replace_generated(updated, table) == updated
    with pytest.raises(ClaimsError, match="no generated claims block"):
        replace_generated("# no markers\n", table)


def test_split_command_sets_aside_environment() -> None:
    assert split_command("A=1 B='x y' python s.py --k 3") == ({"A": "1", "B": "x y"}, ["python", "s.py", "--k", "3"])
    assert split_command("env -u OPENBLAS_CORETYPE -u X C=2 python s.py") == ({"C": "2"}, ["python", "s.py"])
    assert split_command("python s.py \\\n  --k 3")[1] == ["python", "s.py", "--k", "3"]


SCRIPT = '''
import argparse
import os
import sys

TOUCHED = os.environ["SCRIPT_MARK"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--mode", choices=["a", "b"], default="a")
    args = parser.parse_args()
    open(TOUCHED, "w").write("ran")   # never reached when checked


if __name__ == "__main__":
    main()
'''


def test_a_script_command_is_parsed_but_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mark = tmp_path / "ran.txt"
    monkeypatch.setenv("SCRIPT_MARK", str(mark))
    (tmp_path / "bench.py").write_text(SCRIPT)
    check_command("python bench.py --n 3 --mode b", tmp_path)
    check_command(f"SCRIPT_MARK={mark} python bench.py --n 3", tmp_path)
    assert not mark.exists()
    with pytest.raises(ClaimsError, match="arguments rejected .*invalid choice"):
        check_command("python bench.py --n 3 --mode c", tmp_path)
    with pytest.raises(ClaimsError, match="required: --n"):
        check_command("python bench.py", tmp_path)
    with pytest.raises(ClaimsError, match="missing.py does not exist"):
        check_command("python missing.py", tmp_path)
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ClaimsError, match="failed before parsing its arguments: ModuleNotFoundError"):
        check_command("python broken.py", tmp_path)
    (tmp_path / "silent.py").write_text("x = 1\n")
    with pytest.raises(ClaimsError, match="without calling argparse"):
        check_command("python silent.py", tmp_path)


def test_other_command_forms(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("")
    check_command("pytest tests/test_x.py::test_one -q", tmp_path)
    with pytest.raises(ClaimsError, match="tests/nope.py"):
        check_command("pytest tests/nope.py", tmp_path)
    (tmp_path / "run.sh").write_text("echo ok\n")
    check_command("bash run.sh", tmp_path)
    (tmp_path / "bad.sh").write_text("if then fi (\n")
    with pytest.raises(ClaimsError, match="bash -n"):
        check_command("bash bad.sh", tmp_path)
    (tmp_path / "tox.ini").write_text("[tox]\nenv_list = core, plugin-{a,b-c}, lint\n\n[testenv:extra]\n")
    assert tox_environments(tmp_path / "tox.ini") == {"core", "plugin-a", "plugin-b-c", "lint", "extra"}
    check_command("tox -e plugin-a,core", tmp_path)
    with pytest.raises(ClaimsError, match="plugin-z"):
        check_command("tox -e plugin-z", tmp_path)
    check_command("embedlab plugins --json", tmp_path)
    with pytest.raises(ClaimsError, match="invalid choice"):
        check_command("embedlab no-such-command", tmp_path)
    with pytest.raises(ClaimsError, match="not an installed console script"):
        check_command("no-such-program --x", tmp_path)


def test_embedlab_run_commands_load_their_experiment_file(tmp_path: Path) -> None:
    with pytest.raises(ClaimsError, match="missing.toml does not exist"):
        check_command("embedlab run missing.toml", tmp_path)
    (tmp_path / "exp.toml").write_text('[dataset]\nname = "python-stdlib"\n\n[pipelines]\nname = "x"\n')
    with pytest.raises(ClaimsError, match="unknown table"):
        check_command("embedlab run exp.toml", tmp_path)


def test_cli_lists_the_core_claims_as_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["claims", "--json", "--plugin", "embedlab"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [s["plugin"] for s in listing["sources"]] == ["embedlab"] and not listing["sources"][0]["error"]
    ids = [c["id"] for c in listing["claims"]]
    assert "metrics-equal-trec-eval" in ids and all(c["plugin"] == "embedlab" for c in listing["claims"])
    assert main(["claims", "--plugin", "embedlab", "--status", "reproduced"]) == 0
    text = capsys.readouterr().out
    assert "[reproduced] evaluation measures equal trec_eval's" in text and "[partly]" not in text
    assert main(["claims", "--plugin", "no-such-plugin"]) == 1
    assert "no installed plugin named no-such-plugin" in capsys.readouterr().err
    assert main(["claims", "--status", "maybe"]) == 1


def test_an_installed_plugin_with_an_invalid_claims_file_is_reported_not_raised(tmp_path: Path) -> None:
    from embedlab.claims import _source

    bad = tmp_path / "claims.toml"
    bad.write_text(GOOD.replace('command = "python bench.py --n 3"', 'command = "python a.py; python b.py"'))
    source = _source("demo", "embedlab-demo", "1.0", bad)
    assert source.claims == () and "one command on one line" in source.error
    missing = _source("demo", "embedlab-demo", "1.0", tmp_path / "absent" / "claims.toml")
    assert missing.claims == () and "no claims.toml in the package" in missing.error
