"""A minimal bbolt (etcd-io/bbolt, file format 2) writer and reader in the standard library, for Trivy's DB."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Union

# File format (go.etcd.io/bbolt internal/common): little-endian, fixed-size pages.
MAGIC = 0xED0CDAED
VERSION = 2
PAGE_SIZE = 4096
BRANCH, LEAF, META, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF_FLAG = 0x01
PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow (16 bytes)
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos (from the element itself), ksize, vsize (16 bytes)
BUCKET_HEADER = struct.Struct("<QQ")  # root page id, sequence
META_STRUCT = struct.Struct("<IIIIQQQQQ")  # magic, version, pageSize, flags, root{root, seq}, freelist, pgid, txid
FNV64_OFFSET, FNV64_PRIME = 0xCBF29CE484222325, 0x100000001B3

Tree = Mapping[bytes, Union[bytes, "Tree"]]
"""A bucket: key -> value (bytes) or key -> nested bucket (a mapping)."""


class BoltFormatError(ValueError):
    """The file is not a bbolt database this reader understands."""


def fnv64a(data: bytes) -> int:
    value = FNV64_OFFSET
    for byte in data:
        value = ((value ^ byte) * FNV64_PRIME) & 0xFFFFFFFFFFFFFFFF
    return value


def _meta_page(page_id: int, root: int, high_water: int, txid: int, page_size: int) -> bytes:
    fields = (MAGIC, VERSION, page_size, 0, root, 0, 2, high_water, txid)
    body = META_STRUCT.pack(*fields)
    meta = body + struct.pack("<Q", fnv64a(body))  # the checksum covers every field before it
    page = PAGE_HEADER.pack(page_id, META, 0, 0) + meta
    return page.ljust(page_size, b"\0")


class _Pages:
    """Pages allocated in order: 0 and 1 meta, 2 the (empty) freelist, 3.. the buckets' leaves."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.blobs: list[bytes] = []
        self.next_id = 3

    def leaf(self, items: list[tuple[bytes, bytes, int]]) -> int:
        """One leaf page (with overflow pages when it is larger than a page) holding sorted items."""
        header_len = PAGE_HEADER.size + LEAF_ELEMENT.size * len(items)
        elements, data = [], b""
        for index, (key, value, flags) in enumerate(items):
            element_at = PAGE_HEADER.size + LEAF_ELEMENT.size * index
            pos = header_len + len(data) - element_at
            elements.append(LEAF_ELEMENT.pack(flags, pos, len(key), len(value)))
            data += key + value
        size = header_len + len(data)
        overflow = (size - 1) // self.page_size
        page_id = self.next_id
        blob = PAGE_HEADER.pack(page_id, LEAF, len(items), overflow) + b"".join(elements) + data
        self.blobs.append(blob.ljust((overflow + 1) * self.page_size, b"\0"))
        self.next_id += overflow + 1
        return page_id

    def bucket(self, tree: Tree) -> int:
        """Write a bucket's children first, then its leaf; returns the leaf's page id."""
        if len(tree) > 0xFFFF:
            raise ValueError("a bucket of more than 65535 keys needs branch pages, which this writer does not write")
        items: list[tuple[bytes, bytes, int]] = []
        for key in sorted(tree):
            if not key:
                raise ValueError("bbolt keys cannot be empty")
            value = tree[key]
            if isinstance(value, bytes):
                items.append((key, value, 0))
            else:
                items.append((key, BUCKET_HEADER.pack(self.bucket(value), 0), BUCKET_LEAF_FLAG))
        return self.leaf(items)


def encode(tree: Tree, *, page_size: int = PAGE_SIZE) -> bytes:
    """The bytes of a bbolt file holding `tree` (top-level keys must all be buckets, as in bbolt)."""
    if any(isinstance(v, bytes) for v in tree.values()):
        raise ValueError("bbolt's root holds buckets only")
    pages = _Pages(page_size)
    root = pages.bucket(tree)
    high_water = pages.next_id
    freelist = PAGE_HEADER.pack(2, FREELIST, 0, 0).ljust(page_size, b"\0")
    meta0 = _meta_page(0, root, high_water, 0, page_size)
    meta1 = _meta_page(1, root, high_water, 1, page_size)
    return meta0 + meta1 + freelist + b"".join(pages.blobs)


def write(path: Path, tree: Tree, *, page_size: int = PAGE_SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(encode(tree, page_size=page_size))
    tmp.replace(path)
    return path


# ---- reading (for tests of the writer and for inspecting a DB) ---------------------------------------


def decode(data: bytes) -> dict[bytes, object]:
    """Read a bbolt file back into nested dicts (leaf and branch pages, inline buckets), checking the
    meta checksums the way bbolt does."""
    if len(data) < PAGE_HEADER.size + META_STRUCT.size + 8:
        raise BoltFormatError("file too small for a bbolt meta page")
    best: tuple[int, int, int] | None = None  # txid, root, page size
    page_size = META_STRUCT.unpack_from(data, PAGE_HEADER.size)[2]
    for meta_id in (0, 1):
        offset = meta_id * page_size + PAGE_HEADER.size
        if offset + META_STRUCT.size + 8 > len(data):
            continue
        fields = META_STRUCT.unpack_from(data, offset)
        (checksum,) = struct.unpack_from("<Q", data, offset + META_STRUCT.size)
        if fields[0] != MAGIC or fields[1] != VERSION:
            continue
        if checksum != fnv64a(data[offset:offset + META_STRUCT.size]):
            continue
        if best is None or fields[8] > best[0]:
            best = (fields[8], fields[4], fields[2])
    if best is None:
        raise BoltFormatError("no valid meta page (bad magic, version or checksum)")
    _, root, page_size = best

    def page_items(buf: bytes, offset: int) -> list[tuple[int, bytes, bytes]]:
        _, flags, count, _ = PAGE_HEADER.unpack_from(buf, offset)
        items: list[tuple[int, bytes, bytes]] = []
        if flags == LEAF:
            for i in range(count):
                at = offset + PAGE_HEADER.size + LEAF_ELEMENT.size * i
                eflags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(buf, at)
                key = buf[at + pos:at + pos + ksize]
                items.append((eflags, key, buf[at + pos + ksize:at + pos + ksize + vsize]))
        elif flags == BRANCH:
            for i in range(count):
                at = offset + PAGE_HEADER.size + 16 * i
                pos, ksize, child = struct.unpack_from("<IIQ", buf, at)
                items.extend(page_items(data, child * page_size))
        else:
            raise BoltFormatError(f"page at {offset} has flags {flags:#x}, not a leaf or branch")
        return items

    def bucket(buf: bytes, offset: int) -> dict[bytes, object]:
        out: dict[bytes, object] = {}
        for eflags, key, value in page_items(buf, offset):
            if eflags & BUCKET_LEAF_FLAG:
                child_root, _ = BUCKET_HEADER.unpack_from(value)
                if child_root == 0:  # inline bucket: a page right after the header
                    out[key] = bucket(value, BUCKET_HEADER.size)
                else:
                    out[key] = bucket(data, child_root * page_size)
            else:
                out[key] = value
        return out

    return bucket(data, root * page_size)
