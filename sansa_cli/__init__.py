"""sansa: few-shot segmentation with SAM2 (SANSA, NeurIPS 2025).

``from sansa_cli import load_model`` is the library entry point; ``Points``, ``Box`` and
``Scribble`` mark references by prompts. Importing this package stays cheap: torch and sam2 are
imported only when a model is loaded.
"""

__version__ = "0.1.0"
__all__ = ["Box", "Points", "Scribble", "load_model", "__version__"]


def __getattr__(name):
    if name == "load_model":
        from sansa_cli.api import load_model

        return load_model
    if name in ("Box", "Points", "Scribble"):
        from sansa_cli.core import prompts

        return getattr(prompts, name)
    raise AttributeError(f"module 'sansa_cli' has no attribute {name!r}")
