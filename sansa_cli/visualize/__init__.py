"""Pictures: overlays, reference and episode sheets, PCA pictures of image-encoder features."""
