"""`sansa predict`: check every input, segment the targets, write masks, overlays and a summary."""
