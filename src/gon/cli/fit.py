"""``gon fit``: train a model; flags override the YAML ``--config``, which overrides the defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from gon.cli import COMMANDS
from gon.core.errors import GonError
from gon.core.settings import Option, options_of
from gon.models.registry import MODELS, RECIPES, recipe_options
from gon.training.config import FitConfig, fit_options, read_yaml

#: model options that come from the data (gon fit sets them), so they are no flags
DATA_OPTIONS = ("channels", "image_size", "num_images")


def add_parser(commands) -> None:
    p = commands.add_parser(
        "fit", help=COMMANDS["fit"], description=__doc__, argument_default=argparse.SUPPRESS
    )  # SUPPRESS: a flag not given leaves the YAML's value or FitConfig's default
    for option in fit_options().values():
        help = option.describe()
        if option.name == "model":
            help = f"{help}; one of {', '.join(MODELS)}"
        add_flag(p, option, help)
    p.add_argument("--config", help="YAML file of settings; flags given here override it")
    p.add_argument(
        "--recipe",
        choices=list(RECIPES),
        help="set the model and options of a published recipe (any option given here or in --config wins): "
        + "; ".join(f"{name}: {r.describe()}" for name, r in RECIPES.items()).replace("%", "%%"),
    )
    g = p.add_argument_group("model options (each applies to the models that have it)")
    for option, help in model_flags().values():
        add_flag(g, option, help)
    g.add_argument(
        "--negative-gradient", action="store_true", help="z = -grad instead of z0 - grad (Fig. 11a): --no-keep-z0"
    )
    p.set_defaults(run=run)


def add_flag(parser, option: Option, help: str) -> None:
    """``option`` as a flag: a switch for a bool (--x / --no-x when it defaults to on), else a value that
    :meth:`Option.parse` reads leniently and FitConfig checks (so a bad value is one line naming the option, not
    argparse's usage text)."""
    if option.type is bool:
        action = argparse.BooleanOptionalAction if option.default else "store_true"
        parser.add_argument(option.flag, action=action, help=help)
    else:
        parser.add_argument(option.flag, type=option.parse, metavar=option.name.upper(), help=help)


def model_flags() -> dict[str, tuple[Option, str]]:
    """Each option of the registered models once (data-derived ones left out), with a help text that says
    which models take it and their real defaults."""
    takers: dict[str, list[tuple[str, Option]]] = {}
    for model, cls in MODELS.items():
        for option in options_of(cls).values():
            if option.name not in DATA_OPTIONS:
                takers.setdefault(option.name, []).append((model, option))
    flags = {}
    for name, pairs in takers.items():
        option = pairs[0][1]
        defaults: dict[str, list[str]] = {}
        for model, o in pairs:
            defaults.setdefault(str(o.default), []).append(model)
        help = option.describe().split("; default ")[0]
        if len(defaults) == 1:
            help += f"; default {next(iter(defaults))}"
        else:
            help += "; default " + ", ".join(f"{d} ({', '.join(m)})" for d, m in defaults.items())
        missing = [m for m in MODELS if m not in {m for m, _ in pairs}]
        if missing:  # say the shorter of who takes it and who does not
            takers_ = [m for m, _ in pairs]
            help += f" [{', '.join(takers_)}]" if len(takers_) <= len(missing) else f" [not {', '.join(missing)}]"
        flags[name] = (option, help)
    return flags


#: what a ``--resume`` may not change: the model, its options (both from the checkpoint) and the data it
#: is trained on; budgets (max steps/epochs), Adam's lr, weight decay and eps (GonModule.on_train_start applies
#: them to the restored optimiser), intervals, devices, threads and the logger may change
RESUME_KEEPS = ("model", "dataset", "image_size", "resize", "batch_size", "seed", "split_seed", "limit_train")
RESUME_KEEPS += ("sample_rate", "audio_seconds")


def config_from_args(args: argparse.Namespace) -> FitConfig:
    given = {k: v for k, v in vars(args).items() if k not in ("run", "command", "config")}
    requested = config_file(args.config) if getattr(args, "config", None) else {}
    options = requested.pop("model_options", None) or {}
    if not isinstance(options, dict):
        raise GonError(f"config file {args.config}: model_options must be a mapping of option names to values")
    options = dict(options)
    flags = model_flags()
    for key in list(given):
        if key in flags:
            options[key] = given.pop(key)
    if given.pop("negative_gradient", False):
        options["keep_z0"] = False
    recipe = given.pop("recipe", None) or requested.pop("recipe", None)  # (a --config may name one too)
    if recipe is not None:
        model, options = recipe_options(recipe, given.get("model", requested.get("model")), options)
        requested["model"] = model
    requested.update(given)
    if given.get("resume"):  # `gon fit --resume --out RUN` is enough
        values = saved_run_config(given)
        check_resume(requested, options, values)
        if "max_steps" in requested or "max_epochs" in requested:  # a budget given now replaces the saved one
            for key in ("max_steps", "max_epochs"):
                values.pop(key, None)
        options = {**(values.get("model_options") or {}), **options}
    else:
        values = {}
    values.update(requested)
    values["model_options"] = options
    return FitConfig.from_dict(values, source=getattr(args, "config", None) or "command line")


def config_file(path: str) -> dict:
    """The settings of a ``--config`` file. Its ``resume``/``overwrite`` (which older gons wrote into config.yaml)
    may not be switched on there: only a flag resumes or replaces a run, so repeating a run never touches it."""
    values = read_yaml(path)
    for key in ("resume", "overwrite"):
        if values.get(key) not in (None, False):
            raise GonError(
                f"config file {path}: {key} is {values[key]!r}; only the --{key} flag may {key} a run: remove the key"
            )
        values.pop(key, None)
    return values


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_resume(requested: dict, options: dict, saved: dict) -> None:
    """A ``--resume`` continues the run that is there: a setting it keeps may be repeated, not changed."""
    if not saved:
        return
    model = MODELS.get(saved.get("model", FitConfig.model))
    defaults = {name: option.default for name, option in (options_of(model) if model else {}).items()}
    kept = [(k, requested[k], saved.get(k)) for k in RESUME_KEEPS if k in requested and k in saved]
    saved_options = {**defaults, **(saved.get("model_options") or {})}
    kept += [(k, v, saved_options[k]) for k, v in options.items() if k in saved_options]
    for key, value, was in kept:
        if not _same(value, was):
            raise GonError(
                f"--resume: option {key} (--{key.replace('_', '-')}) is {value!r} but the run was trained with "
                f"{was!r}; a resumed run keeps its model, model options and data (start a new run to change them)"
            )


def saved_run_config(given: dict) -> dict:
    """The settings a run was started with, the base for ``--resume``: RUN/config.yaml, with the model and
    its options from the checkpoint (what will really be trained); {} when neither is there."""
    from gon.storage.checkpoints import read_checkpoint
    from gon.storage.runs import default_run_dir, last_checkpoint, split_seed_of

    run = (
        Path(given["out"])
        if given.get("out")
        else default_run_dir(given.get("model", FitConfig.model), given.get("dataset", FitConfig.dataset))
    )
    values = read_yaml(run / "config.yaml") if (run / "config.yaml").is_file() else {}
    values = {k: v for k, v in values.items() if k not in ("resume", "overwrite")}
    if values and "split_seed" not in values:  # a run of an older gon split its folder by --seed: keep its split
        values["split_seed"] = split_seed_of(values)
    if last_checkpoint(run).is_file():
        hparams = read_checkpoint(last_checkpoint(run), mmap=True).get("hyper_parameters")  # tensors left unread
        if isinstance(hparams, dict) and values.get("model") not in (None, hparams.get("model")):
            raise GonError(
                f"--resume: {last_checkpoint(run)} holds a {hparams.get('model')!r} model but the run is a "
                f"{values['model']!r} (its config.yaml): it is another run's checkpoint"
            )
        if isinstance(hparams, dict) and isinstance(hparams.get("model_options"), dict):
            values.update(model=hparams.get("model"), model_options=hparams["model_options"])
    return values


def run(args: argparse.Namespace) -> int:
    from gon.training.cpu_memory import tune_for_training

    tune_for_training()  # training: a step's activations stay mapped between steps (gon.training.cpu_memory)
    from gon.cli.infer import RUN_PATH_ROOM, check_path_length
    from gon.training.trainer import fit  # imports Lightning: only when training

    config = config_from_args(args)
    if config.out:
        check_path_length(Path(config.out), "--out", RUN_PATH_ROOM)  # before any data is read
    fit(config)
    return 0
