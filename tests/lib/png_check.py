#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""A screenshot is what a test expects: a PNG of exactly WIDTH x HEIGHT that is not blank
(at least MIN_COLORS colours, MIN_INK of its pixels not white), and, for each --color given,
at least MIN_PIXELS (default 100) pixels of exactly that colour, or of these colours together
(#rrggbb|#rrggbb...): a chart's fill, drawn.

Usage: png_check.py FILE WIDTH HEIGHT [--color #rrggbb[|#rrggbb...][:MIN_PIXELS]]...
Prints what it found; exit status 0 when every check holds, 1 otherwise. Standard library only
(zlib): 8-bit RGB or RGBA, non-interlaced, as Chromium writes them."""
import struct
import sys
import zlib

MIN_COLORS = 8
MIN_INK = 0.01


def pixels(path):
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG')
    pos, idat, ihdr = 8, b'', None
    while pos < len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b'IHDR':
            ihdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        pos += 12 + length
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError(f'unsupported PNG: depth {depth} colour type {ctype}')
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, rows, i = bytearray(stride), [], 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[x:x + 3]) for r in rows for x in range(0, stride, bpp)]


def main(argv):
    path, want_w, want_h = argv[1], int(argv[2]), int(argv[3])
    colors = []
    args = argv[4:]
    while args:
        if args[0] != '--color' or len(args) < 2:
            raise SystemExit(__doc__)
        spec, _, n = args[1].partition(':')
        colors.append(([bytes.fromhex(c.lstrip('#')) for c in spec.split('|')], int(n or 100)))
        args = args[2:]
    width, height, px = pixels(path)
    counts = {}
    for p in px:
        counts[p] = counts.get(p, 0) + 1
    ink = 1 - counts.get(b'\xff\xff\xff', 0) / len(px)
    ok = (width, height) == (want_w, want_h) and len(counts) >= MIN_COLORS and ink >= MIN_INK
    print(f'{path}: {width}x{height}, {len(counts)} colours, {ink:.1%} not white')
    for rgbs, n in colors:
        got = sum(counts.get(rgb, 0) for rgb in rgbs)
        print(f'  {"|".join("#" + rgb.hex() for rgb in rgbs)}: {got} pixels (at least {n})')
        ok = ok and got >= n
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
