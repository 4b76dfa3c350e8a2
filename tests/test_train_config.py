"""Training configs: presets per mode, overrides, validation, the result key, YAML files, the registry and the
committed presets in configs/ (a test keeps files and code in sync)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import yaml

import facecourse.train  # noqa: F401  (imports every task module, so CONFIGS lists every real task)
from facecourse.settings import MODES
from facecourse.train import config as config_module
from facecourse.train.config import (CONFIGS, CONFIGS_DIR, TrainConfig, main, optimizer_for, preset_mismatches,
                                     preset_path, register_config, scheduler_for, write_presets)

PYTHON = sys.executable


@dataclass
class NetConfig(TrainConfig):
    """A task-like config: its own task name, presets and fields (one of them a tuple)."""

    TASK: ClassVar[str] = "net"
    PRESETS: ClassVar[dict[str, dict]] = {"ci": {"epochs": 2, "width": 4}, "full": {"epochs": 30}}

    width: int = 16
    filters: tuple[int, ...] = (16, 32)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


@dataclass
class OtherConfig(NetConfig):
    """Same fields as NetConfig, another task."""

    TASK: ClassVar[str] = "other"


@pytest.fixture
def registry(monkeypatch):
    """CONFIGS holding only what a test registers (restored afterwards), presets written under tmp."""
    monkeypatch.setattr(config_module, "CONFIGS", {})
    return config_module.CONFIGS


# ---- presets and overrides ---------------------------------------------------------------------------------

def test_for_mode_applies_the_preset_then_the_overrides(monkeypatch):
    ci = NetConfig.for_mode("ci")
    assert (ci.epochs, ci.width, ci.filters) == (2, 4, (16, 32))
    assert NetConfig.for_mode("full").epochs == 30 and NetConfig.for_mode("full").width == 16
    assert NetConfig.for_mode("ci", width=7, lr=0.5).width == 7
    monkeypatch.setenv("FACECOURSE_MODE", "full")
    assert NetConfig.for_mode().epochs == 30
    monkeypatch.setenv("FACECOURSE_MODE", "ci")
    assert NetConfig.for_mode().epochs == 2


def test_unknown_mode_or_field_is_named():
    with pytest.raises(ValueError, match="'huge'"):
        NetConfig.for_mode("huge")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['widht'\]"):
        NetConfig.for_mode("ci", widht=3)


def test_a_preset_naming_no_field_is_refused():
    @dataclass
    class Broken(TrainConfig):
        TASK: ClassVar[str] = "broken"
        PRESETS: ClassVar[dict[str, dict]] = {"ci": {"epoch": 2}, "full": {}}

    with pytest.raises(ValueError, match=r"preset 'ci'.*\['epoch'\]"):
        Broken.for_mode("ci")


@pytest.mark.parametrize("field, value, message", [
    ("batch_size", 0, "batch_size must be >= 1, got 0"),
    ("batch_size", 2.5, "batch_size must be an integer >= 1, got 2.5"),
    ("batch_size", True, "batch_size must be an integer"),
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("seed", -1, "seed must be >= 0, got -1"),
    ("optimizer", "rmsprop", r"optimizer must be one of \('sgd', 'adam', 'adamw'\), got 'rmsprop'"),
    ("lr", 0.0, "lr must be a finite number > 0"),
    ("lr", float("nan"), "lr must be a finite number > 0, got nan"),
    ("lr", "1e-3", "lr must be a finite number > 0, got '1e-3'"),
    ("lr_decay", 1.5, r"lr_decay must be a finite number in \(0, 1\]"),
    ("momentum", 1.0, r"momentum must be a finite number in \[0, 1\)"),
    ("weight_decay", -0.1, "weight_decay must be a finite number >= 0"),
    ("grad_clip", 0.0, "grad_clip must be a finite number > 0"),
    ("log_every", 0, "log_every must be >= 1"),
    ("val_every", 0, "val_every must be >= 1"),
    ("checkpoint_every", -1, "checkpoint_every must be >= 0"),
    ("amp", "yes", "amp must be True or False"),
    ("width", 0, "width must be >= 1, got 0"),
    ("filters", {1, 2}, r"NetConfig.filters must be a plain value"),
])
def test_bad_values_are_named(field, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        NetConfig(**{field: value})


def test_defaults_are_valid_and_ints_for_float_fields_become_floats():
    config = TrainConfig(lr=1, grad_clip=2)
    assert isinstance(config.lr, float) and isinstance(config.grad_clip, float)
    assert config.key() == TrainConfig(lr=1.0, grad_clip=2.0).key()
    assert TrainConfig().grad_clip is None and TrainConfig().amp is True


# ---- dict, key -------------------------------------------------------------------------------------------

def test_to_dict_and_from_dict_round_trip_with_tuples():
    config = NetConfig(filters=(8, 8, 4), lr=0.02)
    data = config.to_dict()
    assert data["filters"] == [8, 8, 4] and list(data)[:3] == ["seed", "epochs", "batch_size"]
    again = NetConfig.from_dict(data)
    assert again == config and again.filters == (8, 8, 4)
    assert NetConfig.from_dict({"width": 3}) == NetConfig(width=3)


def test_from_dict_names_unknown_keys():
    with pytest.raises(ValueError, match=r"\['colour', 'size'\]"):
        NetConfig.from_dict({"width": 3, "size": 1, "colour": "red"})
    with pytest.raises(ValueError, match="mapping"):
        NetConfig.from_dict([("width", 3)])


def test_key_changes_with_results_not_with_result_neutral_fields():
    base = NetConfig()
    assert len(base.key()) == 12 and int(base.key(), 16) >= 0
    for neutral in ({"epochs": 9}, {"log_every": 1}, {"val_every": 5}, {"checkpoint_every": 7}):
        assert NetConfig(**neutral).key() == base.key(), neutral
    for changed in ({"lr": 2e-3}, {"seed": 1}, {"batch_size": 8}, {"width": 3}, {"filters": (16, 33)},
                    {"grad_clip": 1.0}, {"amp": False}):
        assert NetConfig(**changed).key() != base.key(), changed
    assert OtherConfig().key() != base.key(), "the task name is part of the key"


def test_key_is_stable_across_processes():
    """The same key in a fresh interpreter with another hash seed (nothing depends on hash order)."""
    code = "from facecourse.train.config import TrainConfig; print(TrainConfig(lr=0.02, seed=3).key())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert out.stdout.strip() == TrainConfig(lr=0.02, seed=3).key()


# ---- YAML -----------------------------------------------------------------------------------------------

def test_yaml_round_trip_and_layout(tmp_path):
    config = NetConfig.for_mode("ci", filters=(1, 2, 3), grad_clip=0.5)
    path = config.save_yaml(tmp_path / "sub" / "c.yaml", mode="ci")
    document = yaml.safe_load(path.read_text())
    assert list(document) == ["task", "mode", "config"]
    assert document["task"] == "net" and document["mode"] == "ci" and document["config"]["filters"] == [1, 2, 3]
    assert NetConfig.load_yaml(path) == config
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["c.yaml"], "written atomically, no temp left"


def test_yaml_of_another_task_is_refused_naming_both(tmp_path):
    path = OtherConfig().save_yaml(tmp_path / "other.yaml")
    with pytest.raises(ValueError, match=r"task 'other', not of 'net'"):
        NetConfig.load_yaml(path)


def test_yaml_that_is_no_config_or_has_bad_fields_is_refused(tmp_path):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="not a facecourse training config"):
        NetConfig.load_yaml(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("task: net\nmode: null\nconfig:\n  width: 0\n")
    with pytest.raises(ValueError, match=r"bad.yaml: width must be >= 1"):
        NetConfig.load_yaml(tmp_path / "bad.yaml")
    with pytest.raises(FileNotFoundError):
        NetConfig.load_yaml(tmp_path / "missing.yaml")


# ---- registry and preset files --------------------------------------------------------------------------

def test_register_config_checks_the_class(registry):
    assert register_config(NetConfig) is NetConfig and registry == {"net": NetConfig}
    register_config(NetConfig)  # re-registering the same class (a re-imported module) is fine

    @dataclass
    class Impostor(TrainConfig):
        TASK: ClassVar[str] = "net"

    with pytest.raises(ValueError, match=r"'net' is already registered by .*NetConfig.*Impostor"):
        register_config(Impostor)

    class NotADataclass(NetConfig):
        TASK: ClassVar[str] = "plain"

    with pytest.raises(TypeError, match="@dataclass"):
        register_config(NotADataclass)

    @dataclass
    class NoTask(TrainConfig):
        pass

    with pytest.raises(ValueError, match="TASK"):
        register_config(NoTask)

    @dataclass
    class NoFull(TrainConfig):
        TASK: ClassVar[str] = "nofull"
        PRESETS: ClassVar[dict[str, dict]] = {"ci": {}}

    with pytest.raises(ValueError, match=r"lacks mode\(s\) \['full'\]"):
        register_config(NoFull)

    @dataclass
    class BadPreset(TrainConfig):
        TASK: ClassVar[str] = "badpreset"
        PRESETS: ClassVar[dict[str, dict]] = {"ci": {"lr": -1.0}, "full": {}}

    with pytest.raises(ValueError, match="lr must be"):
        register_config(BadPreset)
    assert registry == {"net": NetConfig}


def test_preset_path():
    assert preset_path("net", "ci") == CONFIGS_DIR / "net" / "ci.yaml"
    assert CONFIGS_DIR == Path(__file__).resolve().parents[1] / "configs"
    with pytest.raises(ValueError, match="'huge'"):
        preset_path("net", "huge")
    with pytest.raises(ValueError, match="'../x'"):
        preset_path("../x", "ci")


def test_written_presets_are_in_sync_and_a_change_is_named(registry, tmp_path):
    register_config(NetConfig)
    paths = write_presets(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == ["net/ci.yaml", "net/full.yaml"]
    assert all(preset_mismatches(NetConfig, mode, tmp_path) == [] for mode in MODES)
    ci = tmp_path / "net" / "ci.yaml"
    ci.write_text(ci.read_text().replace("width: 4", "width: 5"))
    problems = preset_mismatches(NetConfig, "ci", tmp_path)
    assert len(problems) == 1 and "ci.yaml" in problems[0] and "'width' is 5 in the file, 4 in the code" in problems[0]
    (tmp_path / "net" / "full.yaml").unlink()
    assert preset_mismatches(NetConfig, "full", tmp_path) == [f"{tmp_path / 'net' / 'full.yaml'} is missing"]


def test_main_writes_and_checks(registry, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config_module, "CONFIGS_DIR", tmp_path)
    register_config(NetConfig)
    assert main(["--check"]) == 1 and "missing" in capsys.readouterr().out
    assert main([]) == 0 and (tmp_path / "net" / "full.yaml").is_file()
    assert main(["--check"]) == 0 and "in sync" in capsys.readouterr().out


def test_module_runs_as_a_script():
    """``python -m facecourse.train.config --check`` uses the registry the task modules filled."""
    out = subprocess.run([PYTHON, "-m", "facecourse.train.config", "--check"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(CONFIGS)} task config(s) in sync" in out.stdout


@pytest.mark.parametrize("task, mode", [(t, m) for t in sorted(CONFIGS) for m in MODES])
def test_committed_presets_match_the_code(task, mode):
    """configs/<task>/<mode>.yaml equals <Config>.for_mode(mode); regenerate with python -m facecourse.train.config."""
    problems = preset_mismatches(CONFIGS[task], mode)
    assert not problems, "\n".join(problems) + "\nregenerate with: python -m facecourse.train.config"


def test_no_committed_preset_without_a_registered_config():
    stale = [p for p in sorted(CONFIGS_DIR.glob("*/*.yaml")) if p.parent.name not in CONFIGS or p.stem not in MODES]
    assert not stale, f"preset files of no registered task/mode (rename or delete them): {stale}"


# ---- optimiser and schedule -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                        ("adamw", torch.optim.AdamW)])
def test_optimizer_for_builds_what_the_config_names(name, kind):
    model = torch.nn.Linear(2, 1)
    config = TrainConfig(optimizer=name, lr=0.05, weight_decay=0.01, momentum=0.5)
    optimizer = optimizer_for(config, model.parameters())
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.5
    groups = optimizer_for(config, [{"params": [model.weight]}, {"params": [model.bias], "lr": 1.0}])
    assert [g["lr"] for g in groups.param_groups] == [0.05, 1.0]


def test_scheduler_decays_per_step():
    model = torch.nn.Linear(2, 1)
    optimizer = optimizer_for(TrainConfig(lr=1.0, lr_decay=0.5), model.parameters())
    scheduler = scheduler_for(TrainConfig(lr=1.0, lr_decay=0.5), optimizer)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)


def test_cosine_schedule_factor_and_key():
    from facecourse.train.config import cosine_factor

    assert [round(cosine_factor(s, 3, 10), 6) for s in (0, 1, 2)] == [0.25 * cosine_factor(0, 0, 10),
                                                                        round(0.5 * cosine_factor(1, 0, 10), 6),
                                                                        round(0.75 * cosine_factor(2, 0, 10), 6)]
    assert cosine_factor(0, 0, 10) == 1.0 and cosine_factor(10, 0, 10) == 0.0
    assert cosine_factor(5, 0, 10) == pytest.approx(0.5)
    base = TrainConfig(schedule="cosine", epochs=2)
    assert base.key() != TrainConfig(schedule="cosine", epochs=3).key()  # the decay spans all epochs
    assert TrainConfig(epochs=2).key() == TrainConfig(epochs=3).key()  # exponential: resumable to more epochs
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(warmup_steps=-1)
