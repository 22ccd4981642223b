"""The `xwam-ros` entry point: tools dispatch, a missing optional dependency is named, a bug is not hidden."""
import subprocess
import sys

from xwam_ros import cli


def test_tool_runs_and_returns_its_code(capsys):
    assert cli.main(["info", "--preset", "tiny"]) == 0
    assert "tokens per call" in capsys.readouterr().out


def test_missing_optional_dependency_is_named(monkeypatch, capsys):
    monkeypatch.setitem(cli.TOOLS, "fake", ("xwam_ros_missing_dependency_xyz", "main", "a tool needing a package"))
    assert cli.main(["fake"]) == 2
    assert "xwam_ros_missing_dependency_xyz" in capsys.readouterr().err


def test_errors_inside_a_tool_are_not_reported_as_missing_features():
    """A KeyError raised by the tool itself must surface as a traceback, not as 'not available in this build'."""
    code = ("import sys, types; from xwam_ros import cli; m = types.ModuleType('kboom'); "
            "m.main = lambda argv: {}['missing key']; sys.modules['kboom'] = m; "
            "cli.TOOLS['boom'] = ('kboom', 'main', ''); sys.exit(cli.main(['boom']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.returncode != 2
    assert "Traceback" in r.stderr and "KeyError" in r.stderr and "not available" not in r.stderr
