"""Files sansa reads and writes: adapter files, training checkpoints, the authors' files,
the universal adapter, SAM2 checkpoints and their download, mask files, atomic writes and output
plans."""
