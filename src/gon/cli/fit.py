"""``gon fit``: train a model; flags override the YAML ``--config``, which overrides the defaults."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path

from gon.config import FitConfig, fit_options, read_yaml
from gon.registry import MODELS
from gon.settings import Option, options_of

#: model options that come from the data (gon fit sets them), so they are no flags
DATA_OPTIONS = ("channels", "image_size", "num_images")


def add_parser(commands) -> None:
    p = commands.add_parser(
        "fit", help="train a GON", description=__doc__, argument_default=argparse.SUPPRESS
    )  # SUPPRESS: a flag not given leaves the YAML's value or FitConfig's default
    for option in fit_options().values():
        help = option.describe()
        if option.name == "model":
            help = f"{help}; one of {', '.join(MODELS)}"
        add_flag(p, option, help)
    p.add_argument("--config", help="YAML file of settings; flags given here override it")
    g = p.add_argument_group("model options (each applies to the models that have it)")
    for option, help in model_flags().values():
        add_flag(g, option, help)
    g.add_argument(
        "--negative-gradient", action="store_true", help="z = -grad instead of z0 - grad (Fig. 11a): --no-keep-z0"
    )
    p.set_defaults(run=run)


def add_flag(parser, option: Option, help: str) -> None:
    """``option`` as a flag: a switch for a bool (--x / --no-x when it defaults to on), else a typed value that
    FitConfig checks (so a bad value is one line naming the option, not argparse's usage text)."""
    if option.type is bool:
        action = argparse.BooleanOptionalAction if option.default else "store_true"
        parser.add_argument(option.flag, action=action, help=help)
    else:
        kinds = [k for k in (int, float) if k in typing.get_args(option.type) or option.type is k]
        parser.add_argument(option.flag, type=kinds[0] if kinds else str, metavar=option.name.upper(), help=help)


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


def config_from_args(args: argparse.Namespace) -> FitConfig:
    given = {k: v for k, v in vars(args).items() if k not in ("run", "command", "config")}
    values = saved_run_config(given) if given.get("resume") else {}  # `gon fit --resume --out RUN` is enough
    if getattr(args, "config", None):
        from_file = read_yaml(args.config)
        from_file["model_options"] = {**(values.get("model_options") or {}), **(from_file.get("model_options") or {})}
        values.update(from_file)
    if "max_steps" in given or "max_epochs" in given:  # a budget given now replaces the saved one
        for key in ("max_steps", "max_epochs"):
            values.pop(key, None)
    options = dict(values.get("model_options") or {})
    flags = model_flags()
    for key in list(given):
        if key in flags:
            options[key] = given.pop(key)
    if given.pop("negative_gradient", False):
        options["keep_z0"] = False
    values.update(given)
    values["model_options"] = options
    return FitConfig.from_dict(values, source=getattr(args, "config", None) or "command line")


def saved_run_config(given: dict) -> dict:
    """The settings a run was started with (RUN/config.yaml), the base for ``--resume``; {} if absent."""
    from gon.runs import default_run_dir

    run = (
        Path(given["out"])
        if given.get("out")
        else default_run_dir(given.get("model", FitConfig.model), given.get("dataset", FitConfig.dataset))
    )
    if not (run / "config.yaml").is_file():
        return {}
    values = read_yaml(run / "config.yaml")
    return {k: v for k, v in values.items() if k not in ("resume", "overwrite")}


def run(args: argparse.Namespace) -> int:
    from gon.training import fit  # imports Lightning: only when training

    fit(config_from_args(args))
    return 0
