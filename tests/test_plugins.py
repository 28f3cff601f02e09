"""Plugin discovery: plugin folders, a real entry point, duplicates, parameter validation."""

import hashlib
import os

import pytest
from support import run_cli

import benchbias
from benchbias.foundation.contract import Param, ParamError, resolve_params
from benchbias.foundation.registry import PluginError, load_registry

PLUGIN_SOURCE = """
from benchbias.api import Translator, hookimpl


class {cls}(Translator):
    name = "{name}"
    paired = {paired}

    def fit(self, data, ctx):
        for _ in ctx.loop():
            pass

    def translate(self, source):
        return source


@hookimpl
def register_translators(register):
    register({cls})
"""


def write_plugin(folder, filename, name, cls="Identity", paired=False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(PLUGIN_SOURCE.format(cls=cls, name=name, paired=paired))
    return folder / filename


def test_baselines_come_from_the_installed_plugins_folder():
    registry = load_registry()
    l1 = registry.get("translator", "l1")
    assert l1.cls.paired is True
    assert l1.origin.source == "file" and l1.origin.location == "benchbias_plugins/l1.py"
    assert l1.origin.distribution == "benchbias" and l1.origin.release == f"benchbias {benchbias.__version__}"
    assert len(l1.origin.sha256) == 64
    assert "impartial-cnn" in registry.names("classifier")
    assert "brats2018" in registry.names("dataset")


def test_plugin_folder_argument_and_environment_variable(tmp_path, monkeypatch):
    path = write_plugin(tmp_path / "mine", "identity.py", "identity")
    registry = load_registry([tmp_path / "mine"])
    origin = registry.get("translator", "identity").origin
    assert str(origin) == f"file {path.resolve()}" and origin.distribution is None
    assert origin.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert origin.release == f"identity.py sha256:{origin.sha256[:12]}"
    monkeypatch.setenv("BENCHBIAS_PLUGIN_DIRS", str(tmp_path / "mine"))
    assert "identity" in load_registry().names("translator")


def test_duplicate_name_names_both_origins(tmp_path):
    path = write_plugin(tmp_path / "dup", "my_l1.py", "l1", cls="MyL1", paired=True)
    with pytest.raises(PluginError) as err:
        load_registry([tmp_path / "dup"])
    message = str(err.value)
    assert "translator 'l1' is registered twice" in message
    assert "benchbias_plugins/l1.py" in message and str(path.resolve()) in message


@pytest.mark.slow
def test_duplicate_through_cli_is_one_line_exit_2(tmp_path):
    write_plugin(tmp_path / "dup", "my_l1.py", "l1", cls="MyL1", paired=True)
    result = run_cli("plugins", "--plugin-dir", str(tmp_path / "dup"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "registered twice" in result.stderr


def test_missing_plugin_folder_is_an_error(tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        load_registry([tmp_path / "nowhere"])


def test_broken_plugin_file_names_itself(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "oops.py").write_text("raise RuntimeError('kaboom')\n")
    with pytest.raises(PluginError, match=r"oops.py: failed to import: RuntimeError: kaboom"):
        load_registry([tmp_path / "broken"])


@pytest.mark.slow
def test_real_entry_point_from_a_dist_info_on_sys_path(tmp_path):
    """A distribution installed the way pip lays it out: a module plus a .dist-info with entry_points.txt."""
    site = tmp_path / "site"
    write_plugin(site, "acme_translator.py", "acme", cls="Acme", paired=False)
    dist_info = site / "acme_benchbias-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-benchbias\nVersion: 1.2.3\n")
    (dist_info / "entry_points.txt").write_text("[benchbias]\nacme = acme_translator\n")
    result = run_cli("plugins", env={"PYTHONPATH": str(site)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("acme "))
    assert "unpaired" in line and "entry point 'acme' (acme-benchbias 1.2.3)" in line


def test_params_are_validated():
    declared = {"lr": Param(2e-4, minimum=0.0), "blocks": Param(9, minimum=0), "mode": Param("lsgan", choices=("lsgan", "vanilla"))}
    assert resolve_params("x", declared, {"lr": 1}) == {"lr": 1.0, "blocks": 9, "mode": "lsgan"}
    with pytest.raises(ParamError, match="unknown parameter 'lrr'"):
        resolve_params("x", declared, {"lrr": 1})
    with pytest.raises(ParamError, match="'blocks' must be int, got float"):
        resolve_params("x", declared, {"blocks": 2.5})
    with pytest.raises(ParamError, match="'blocks' must be >= 0"):
        resolve_params("x", declared, {"blocks": -1})
    with pytest.raises(ParamError, match="must be one of"):
        resolve_params("x", declared, {"mode": "wgan"})
    with pytest.raises(ParamError, match="must be int, got bool"):
        resolve_params("x", declared, {"blocks": True})


# ---- the plugin gate: faults stay with the plugin that has them ----------------------------


def fake_distribution(site, module, source, dist="acme-benchbias", version="1.2.3"):
    """A distribution laid out as pip installs it: a module plus a .dist-info with an entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    dist_info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (dist_info / "entry_points.txt").write_text(f"[benchbias]\n{module} = {module}\n")


@pytest.mark.slow
def test_an_entry_point_that_fails_to_import_is_skipped_with_a_warning(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "broken_translator", "import no_such_module_anywhere\n")
    env = {"PYTHONPATH": str(site)}
    listing = run_cli("plugins", env=env, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "l1 " in listing.stdout
    warning = [line for line in listing.stderr.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("benchbias: warning: skipping entry point 'broken_translator")
    assert "acme-benchbias 1.2.3" in warning[0] and "ModuleNotFoundError" in warning[0] and "pip uninstall acme-benchbias" in warning[0]
    # Only a run that needs one of its methods fails, and it says why.
    needed = run_cli("run", "synthetic-smoke", "--translator", "broken", "--no-progress", "--out", str(tmp_path / "r"), env=env, cwd=tmp_path)
    assert needed.returncode == 2
    error = needed.stderr.strip().splitlines()[-1]
    assert "unknown translator 'broken'" in error and "skipped entry point 'broken_translator" in error


@pytest.mark.slow
def test_a_misspelt_hook_is_an_error_naming_the_plugin(tmp_path):
    (tmp_path / "typo").mkdir()
    path = tmp_path / "typo" / "typo.py"
    path.write_text(PLUGIN_SOURCE.format(cls="Typo", name="typo", paired=False).replace("def register_translators", "def register_translator"))
    with pytest.raises(
        PluginError, match=r"typo\.py.*register_translator.*the hooks are: register_classifiers, register_datasets, register_metrics, register_translators"
    ):
        load_registry([tmp_path / "typo"])
    result = run_cli("plugins", "--plugin-dir", str(tmp_path / "typo"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and str(path.resolve()) in result.stderr


def test_code_identity_follows_the_plugin_source(tmp_path):
    path = write_plugin(tmp_path / "mine", "identity.py", "identity")
    before = load_registry([tmp_path / "mine"]).get("translator", "identity").code_sha256
    assert before == load_registry([tmp_path / "mine"]).get("translator", "identity").code_sha256
    path.write_text("import os  # an import, a comment and a docstring change no code\n" + path.read_text() + '\n"""More words."""\n')
    assert load_registry([tmp_path / "mine"]).get("translator", "identity").code_sha256 == before
    path.write_text(path.read_text() + "\nEXTRA = 1\n")
    assert load_registry([tmp_path / "mine"]).get("translator", "identity").code_sha256 != before
    # A baseline's identity covers the shared core it inherits from, not only its own file.
    l1 = load_registry().get("translator", "l1")
    assert l1.code_sha256 != l1.origin.sha256


def test_the_suite_ignores_plugins_installed_in_the_environment(tmp_path, monkeypatch):
    """A plugin pip-installed into site-packages (here: a real dist-info in a folder taken for one)
    is ignored under the test suite's setting, while the same on PYTHONPATH is found."""
    import sys

    from benchbias.foundation import registry

    site = tmp_path / "site"
    fake_distribution(site, "envwide_translator", PLUGIN_SOURCE.format(cls="Envwide", name="envwide", paired=True))
    monkeypatch.syspath_prepend(str(site))
    assert os.environ.get("BENCHBIAS_IGNORE_SITE_PLUGINS") == "1", "set by conftest for every test and the CLI runs they start"
    assert "envwide" in load_registry().names("translator"), "on the path, not in site-packages: found"
    monkeypatch.setattr(registry, "site_folders", lambda: [site.resolve()])
    sys.modules.pop("envwide_translator", None)
    assert "envwide" not in load_registry().names("translator"), "installed in the environment: ignored under the suite"
    monkeypatch.delenv("BENCHBIAS_IGNORE_SITE_PLUGINS")
    assert "envwide" in load_registry().names("translator"), "a user's discovery is unchanged"
