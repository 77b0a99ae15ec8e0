"""Plugin registries for adapter strategies and datasets, through Python entry points.

Built-ins are registered in this project's own ``pyproject.toml`` through the same entry-point
groups as third-party plugins, so there is one code path. Listing names imports nothing; only the
chosen plugin is loaded.
"""

from __future__ import annotations

from importlib import metadata

from sansa_cli.errors import PluginError

GROUPS = {"adapter": "sansa_cli.adapters", "dataset": "sansa_cli.datasets"}


def _distribution(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "an unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


def entry_points(kind: str) -> dict[str, metadata.EntryPoint]:
    """Name -> entry point for one plugin kind ('adapter' or 'dataset'), without importing any.

    Two distributions registering the same name with different targets is an error: a silent
    winner would make results depend on install order.
    """
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUPS[kind]):
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise PluginError(
                f"two {kind} plugins are named '{ep.name}': {other.value} ({_distribution(other)}) "
                f"and {ep.value} ({_distribution(ep)}); uninstall one of them"
            )
        found[ep.name] = ep
    return dict(sorted(found.items()))


def names(kind: str) -> list[str]:
    """Registered plugin names of one kind, sorted, without importing any plugin."""
    return list(entry_points(kind))


def load(kind: str, name: str):
    """Import and return the plugin class registered under ``name``, checked against its
    kind's contract (a subclass of the base class, with a name, and a ``Config`` dataclass for
    strategies); a plugin that fails to load or to follow it is a :class:`PluginError`
    naming the plugin."""
    eps = entry_points(kind)
    if name not in eps:
        available = ", ".join(eps) or "none"
        raise PluginError(f"unknown {kind} '{name}'; available: {available}")
    ep = eps[name]
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken plugin must not look like a missing one
        raise PluginError(
            f"{kind} plugin '{name}' from {_distribution(ep)} failed to load "
            f"({ep.value}): {type(exc).__name__}: {exc}"
        ) from exc
    problem = _contract_problem(kind, plugin)
    if problem:
        raise PluginError(f"{kind} plugin '{name}' from {_distribution(ep)} ({ep.value}) "
                          f"{problem}; fix or uninstall the plugin")
    return plugin


def _contract_problem(kind: str, plugin) -> str:
    """What keeps ``plugin`` from following its kind's contract; empty if nothing."""
    import dataclasses

    if kind == "adapter":
        from sansa_cli.adapters.base import AdapterStrategy as base
    else:
        from sansa_cli.datasets.base import FewShotDataset as base
    if not (isinstance(plugin, type) and issubclass(plugin, base)):
        return f"is not a subclass of {base.__module__}.{base.__name__}"
    if not isinstance(getattr(plugin, "name", None), str) or not plugin.name:
        return "sets no name"
    if kind == "adapter" and not dataclasses.is_dataclass(getattr(plugin, "Config", None)):
        return "has no Config dataclass"
    return ""
