"""Settings: the presets, the one function that changes them, and the checks before any work starts."""

from dataclasses import replace

import pytest

from spikeclip_lite import settings
from spikeclip_lite.settings import FAST, FULL, LONG, changes, configure, override


def test_full_settings_are_larger():
    assert FULL.size > FAST.size and FULL.n_train > FAST.n_train
    with pytest.raises(TypeError):
        settings.PipelineConfig(not_a_field=1)


def test_long_preset_is_the_cpu_stand_in_for_full_mode():
    assert LONG.steps_coarse > FAST.steps_coarse and LONG.size == FAST.size
    assert LONG.defences.anchor_blur > 0 and FULL.defences.anchor_blur > 0 and FAST.defences.anchor_blur == 0
    # long's accuracy slack lets whole scenes go (a slack below one scene would be the strict guard in disguise);
    # fast and full keep the strict guard
    assert 1 / LONG.n_val <= LONG.defences.accuracy_slack <= 0.02
    assert FAST.defences.accuracy_slack == 0 and FULL.defences.accuracy_slack == 0


def test_every_preset_coarse_stage_learns_from_the_spikes_alone():
    """The class loss never joins the presets' coarse stage (measured: docs/full_size.md), and its fidelity
    target is TFI on one gain for the whole set; a negative class_after is refused before any work."""
    for preset in (FAST, FULL, LONG):
        assert preset.class_after is None and preset.fidelity_target == "tfi_gain"
        assert settings.class_loss_from(preset) == preset.steps_coarse  # never: after the stage's last step
    assert configure("fast", ["class_after=0"]).class_after == 0  # the class loss back from the first step
    with pytest.raises(ValueError, match="class_after=-1 is out of range"):
        configure("fast", ["class_after=-1"])


def test_raising_the_coarse_steps_never_turns_the_class_loss_on():
    """class_after was the preset's step count (300 in fast mode): `--set steps_coarse=1200` then put the class
    loss back from step 300, silently. None means never, whatever the steps; a number still means that step."""
    longer = configure("fast", ["steps_coarse=1200"])
    assert longer.class_after is None and settings.class_loss_from(longer) == 1200
    assert settings.class_loss_from(configure("fast", ["steps_coarse=1200", "class_after=300"])) == 300
    assert configure("full", ["class_after=none"]).class_after is None
    assert configure("full", ["class_after=never"]).class_after is None
    assert settings.class_loss_from(configure("fast", ["class_after=5000"])) == FAST.steps_coarse  # later = never
    with pytest.raises(ValueError, match="class_after is an int or none"):
        configure("fast", ["class_after=soon"])


def test_every_preset_value_that_differs_from_fast_mode_gives_its_reason():
    """Each line of FULL and LONG that sets a value carries a comment saying why (issue #17)."""
    import inspect

    source = inspect.getsource(settings)
    for name in ("FULL", "LONG"):
        block = source[source.index(f"{name} = replace(") :]
        block = block[: block.index("\n)\n")]
        for line in block.splitlines()[2:]:
            if "=" in line and not line.strip().startswith("#"):
                assert "#" in line, f"{name}: no reason given for {line.strip()!r}"
    assert set(changes(FULL)) >= {"size", "n_train", "batch", "prompt_loss", "defences.anchor_blur"}


def test_override_parses_as_the_field_type_and_leaves_the_preset_alone():
    cfg = override(FAST, ["steps_coarse=7", "lam=2.5", "defences.anchor=0", "download=true"])
    assert (cfg.steps_coarse, cfg.lam, cfg.defences.anchor, cfg.download) == (7, 2.5, 0.0, True)
    assert cfg.defences.augment and FAST.steps_coarse == 300  # the preset is untouched
    assert override(cfg, ["data_dir=somewhere"]).data_dir == "somewhere"
    for bad, msg in (
        ("steps=3", "unknown setting"),
        ("lam=big", "float"),
        ("batch", "KEY=VALUE"),
        ("defences.x=1", "Defences"),
    ):
        with pytest.raises(ValueError, match=msg):
            override(cfg, [bad])


def test_configure_is_preset_plus_values_plus_overrides_checked():
    cfg = configure("full", ["steps_fine=5"], clip="teaching")
    assert cfg == replace(FULL, steps_fine=5, clip="teaching")
    assert changes(cfg, "full") == {"steps_fine": 5, "clip": "teaching"}
    assert changes(configure("fast", ["defences.anchor=0.5"])) == {"defences.anchor": 0.5}
    with pytest.raises(ValueError, match="unknown mode 'huge'"):
        configure("huge")
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['stepz'\]"):
        configure("fast", stepz=3)
    with pytest.raises(ValueError, match="clip has a flag of its own"):
        configure("fast", ["clip=teaching"], flags=settings.FLAGS)


@pytest.mark.parametrize(
    "setting, message",
    [
        ("steps_coarse=-5", "steps_coarse=-5 is out of range: it must be ≥ 0"),
        ("batch=0", "batch=0 is out of range: it must be ≥ 1"),
        ("n_train=0", "n_train=0 is out of range"),
        ("lr_coarse=nan", "lr_coarse=nan must be a finite number"),
        ("lr_supervised=2", "lr_supervised=2.0 is out of range"),
        ("lr_decay=1.5", "lr_decay=1.5 is out of range"),
        ("size=8", "size=8 is out of range: it must be in \\[32, 1024\\]"),
        ("defences.anchor=-1", "defences.anchor=-1.0 is out of range"),
        ("prompt_loss=hinge", "prompt_loss='hinge' is not one of"),
        ("pad=mirror", "pad='mirror' is not one of"),
        ("defences.pick=first", "defences.pick='first' is not one of \\['last', 'best'\\]"),
        ("defences.score_tolerance=2.5", "defences.score_tolerance=2.5 is out of range"),
        ("crop=65", "crop=65 is larger than the images \\(size=64\\)"),
        ("supervised_crop=65", "supervised_crop=65 is larger than the images \\(size=64\\)"),
        ("pad=zero", "^setting crop=32, supervised_crop=32 needs pad=reflect.*set crop=0 supervised_crop=0$"),
        ("fidelity_blur=1", "crop=32 needs fidelity_blur=0"),
    ],
)
def test_out_of_range_settings_are_named(setting, message):
    with pytest.raises(ValueError, match=message):
        configure("fast", [setting])


def test_which_presets_train_on_windows():
    """The coarse stage trains on windows half the frame's side in fast mode (32² at 64², make run's 3 minutes)
    and full mode (64² at 128², measured on its CPU proxy); the long run keeps whole frames for it. The
    supervised bound trains on those windows in every preset (measured to make it a bound). With the authors'
    zero padding, crop=0 and supervised_crop=0 run."""
    assert FAST.crop == 32 and FULL.crop == 64 and LONG.crop == 0  # half the side at 64² and 128²
    assert FAST.supervised_crop == LONG.supervised_crop == 32 and FULL.supervised_crop == 64
    with pytest.raises(ValueError, match="^setting supervised_crop=32 needs pad=reflect.*set supervised_crop=0$"):
        configure("fast", ["pad=zero", "crop=0"])
    with pytest.raises(ValueError, match="^setting supervised_crop=32 needs pad=reflect.*set supervised_crop=0$"):
        configure("long", ["pad=zero"])  # the long run's bound trains on windows too
    assert configure("long", ["pad=zero", "supervised_crop=0"]).crop == 0
    assert configure("fast", ["pad=zero", "crop=0", "supervised_crop=0"]).pad == "zero"
    # a blur of the coarse stage's fidelity term does not concern the bound's windows
    assert configure("fast", ["fidelity_blur=1", "crop=0"]).supervised_crop == 32
    with pytest.raises(ValueError, match="^setting crop=64, supervised_crop=64 needs pad=reflect"):
        configure("full", ["pad=zero"])
    assert configure("full", ["pad=zero", "crop=0", "supervised_crop=0"]).pad == "zero"


def test_a_setting_given_twice_is_refused():
    """A notebook passes CLIP_NAME, DEVICE and SEED as values and SETTINGS as overrides: SETTINGS="seed=1" used to
    win over SEED without a word."""
    with pytest.raises(ValueError, match="seed is given twice"):
        configure("fast", ["seed=1"], seed=0)
    with pytest.raises(ValueError, match="has a flag of its own"):  # the command line's own message first
        configure("fast", ["clip=teaching"], flags=settings.FLAGS, clip="auto")
    assert configure("fast", ["steps_fine=5"], seed=3).seed == 3
