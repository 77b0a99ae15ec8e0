"""Label Studio's brush RLE: the ``value.rle`` of a ``brushlabels`` result (numpy only).

Not COCO RLE: it is thi.ng's rle-pack bit stream of the mask as a flattened H x W x 4 RGBA
uint8 image, row-major (Label Studio's converter reshapes it to ``[height, width, 4]`` and reads
the alpha channel). Bits are written most significant first, packed into bytes, the last byte
padded with zeros; the JSON value is the list of those bytes. The stream:

- header: the value count (32 bits, H*W*4), the word size minus 1 (5 bits: 8 -> 7), and four
  run-length field widths minus 1 (4 bits each: 3, 4, 8, 16 -> 2, 3, 7, 15);
- then chunks until the count is reached. A chunk is a flag bit (1: a run of one repeated
  value, 0: literal values), 2 bits choosing one of the four widths, the chunk length minus 1
  in that many bits, then one 8-bit word (a run) or that many words (literals).

This writer uses runs only, so a chunk holds at most 2**16 values and longer runs are split.
Object pixels are 255 in all four channels (white, opaque), as Label Studio's own
``mask2rle`` writes them; background is 0.
"""

from __future__ import annotations

import numpy as np

from sansa_cli.errors import UserInputError

_WORD_BITS = 8
_WIDTHS = np.array([3, 4, 8, 16])
_MAX_CHUNK = 2 ** int(_WIDTHS[-1])
_CHANNELS = 4


def brush_rle(mask: np.ndarray) -> list[int]:
    """``mask`` (bool HxW) as Label Studio brush RLE bytes."""
    flat = np.asarray(mask, dtype=bool).ravel()
    count = flat.size * _CHANNELS
    if count >= 2**32:
        raise UserInputError(f"a {mask.shape} mask is too large for Label Studio's brush RLE")
    header = [(count, 32), (_WORD_BITS - 1, 5), *((int(w) - 1, 4) for w in _WIDTHS)]
    header_bits = np.concatenate([_bits(np.array([value]), np.array([width]))
                                  for value, width in header])
    if not flat.size:
        return np.packbits(header_bits).tolist()
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
    run_lengths = np.diff(np.append(starts, flat.size)) * _CHANNELS
    run_values = np.where(flat[starts], 255, 0)
    lengths, values = _split(run_lengths, run_values)
    width_index = np.searchsorted(2**_WIDTHS, lengths)  # smallest width that holds length - 1
    widths = _WIDTHS[width_index]
    # flag 1 | width index | length - 1 | the repeated word, as one integer per chunk
    codes = (((((1 << 2) | width_index) << widths) | (lengths - 1)) << _WORD_BITS) | values
    return np.packbits(np.concatenate([header_bits, _bits(codes, 3 + widths + _WORD_BITS)]))\
        .tolist()


def _split(lengths: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs cut into chunks of at most ``_MAX_CHUNK`` values (full chunks first)."""
    pieces = -(-lengths // _MAX_CHUNK)
    chunk_lengths = np.full(int(pieces.sum()), _MAX_CHUNK, dtype=np.int64)
    chunk_lengths[np.cumsum(pieces) - 1] = lengths - (pieces - 1) * _MAX_CHUNK
    return chunk_lengths, np.repeat(values, pieces)


def _bits(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """The low ``widths[i]`` bits of each ``codes[i]``, most significant first, concatenated."""
    codes, widths = codes.astype(np.int64), np.asarray(widths, dtype=np.int64)
    shifts = widths[:, None] - 1 - np.arange(int(widths.max()))
    bits = (codes[:, None] >> np.maximum(shifts, 0)) & 1
    return bits[shifts >= 0].astype(np.uint8)
