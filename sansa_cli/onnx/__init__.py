"""Export to ONNX (``sansa export-onnx``) and what the torch-free runtime shares with it.

The export side (:mod:`~sansa_cli.onnx.rope`, :mod:`~sansa_cli.onnx.graphs`,
:mod:`~sansa_cli.onnx.export`) needs torch, sam2 and the exporter (``pip install
"sansa-cli[onnx]"``). :mod:`~sansa_cli.onnx.manifest` and :mod:`~sansa_cli.onnx.arrays` need only
the standard library and numpy: :mod:`sansa_cli.onnx_runtime` runs the graphs with them.
"""
