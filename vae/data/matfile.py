"""One numeric variable of a MATLAB v5 file, its layout checked before scipy reads it.

scipy's MATLAB reader (`scipy.io.loadmat`, compiled code) trusts the type codes inside a file: a damaged
file can crash the whole process (scipy 1.17 segfaults when the type byte of a uint8 array's data element
is changed), where it should be refused. So the file is walked here first, in plain Python, along the
layout of MathWorks' "MAT-File Format" (version 5): a 128-byte header that ends with the version 0x0100
and the byte-order mark "IM" / "MI", then data elements, each an 8-byte tag (data type, byte count) and
its data; a variable is a miMATRIX element (or one inside a zlib-compressed miCOMPRESSED element) holding
sub-elements for its array flags (class), dimensions, name and real part. Only when the named variable's
every tag is one this check knows, its sizes add up and nothing is missing does scipy see it: the header
and that variable's uncompressed element alone, so scipy parses exactly the bytes checked here.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

HEADER = 128
MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
CLASSES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single", 8: "int8",
           9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64"}
NUMERIC_CLASSES = frozenset(range(6, 16))
# data type -> struct code of one value (a numeric array's values may be stored in a smaller type than its class)
VALUE_CODES = {1: "b", 2: "B", 3: "h", 4: "H", 5: "i", 6: "I", 7: "f", 9: "d", 12: "q", 13: "Q"}
COMPLEX = 0x800  # the array-flags bit of a complex array


class MatLayoutError(ValueError):
    """The file is not laid out as a MATLAB v5 file holding the variable; str(err) says what is wrong."""


@dataclass(frozen=True)
class MatVariable:
    name: str
    kind: str  # its MATLAB class: "uint8", "double", "struct", ...
    shape: tuple[int, ...]
    scipy_bytes: bytes | None  # the header and this variable's element alone; None unless its data checked out


def find_variable(raw: bytes, wanted: str, *, max_bytes: int) -> tuple[MatVariable | None, list[str]]:
    """(the variable `wanted` of a MATLAB v5 file's bytes or None, the names of the others seen); a
    MatLayoutError when the file is not one, or is damaged. `max_bytes` bounds what a compressed element
    may unpack to (zip bombs)."""
    order = _byte_order(raw)
    names, pos = [], HEADER
    while pos + 8 <= len(raw):
        kind, size = struct.unpack_from(order + "II", raw, pos)
        if kind >> 16:
            raise MatLayoutError(f"its data element at byte {pos} has a malformed tag")
        if pos + 8 + size > len(raw):
            raise MatLayoutError(f"it is cut short, its element at byte {pos} needing {size} bytes where "
                                 f"{len(raw) - pos - 8} are left")
        element = raw[pos:pos + 8 + size] if kind == MI_MATRIX else \
            _inflate(raw[pos + 8:pos + 8 + size], pos, max_bytes) if kind == MI_COMPRESSED else None
        pos += 8 + size
        if element is None:
            continue  # an element of another kind holds no variable
        name = _header(element, order)[2]
        if name == wanted:
            return _checked(element, order, raw[:HEADER], wanted), names
        names.append(name)
    return None, names


def _byte_order(raw: bytes) -> str:
    if len(raw) < HEADER + 8:
        raise MatLayoutError(f"it is {len(raw)} bytes long, too short for a MATLAB v5 file")
    mark = raw[126:128]
    if mark not in (b"IM", b"MI"):
        raise MatLayoutError("it lacks the byte-order mark of a MATLAB v5 file")
    order = "<" if mark == b"IM" else ">"
    version = struct.unpack_from(order + "H", raw, 124)[0]
    if version != 0x0100:
        hdf5 = ", which marks an HDF5 file of MATLAB v7.3, so save it again with -v7" if version == 0x0200 else ""
        raise MatLayoutError(f"its version is {version:#06x}, not the 0x0100 of a MATLAB v5 file{hdf5}")
    return order


def _inflate(payload: bytes, pos: int, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        element = inflater.decompress(payload, max_bytes)
    except zlib.error as err:
        raise MatLayoutError(f"its compressed element at byte {pos} is damaged, zlib reporting '{err}'") from err
    if inflater.unconsumed_tail:
        raise MatLayoutError(f"its compressed element at byte {pos} unpacks to more than {max_bytes} bytes")
    if len(element) < 8 or struct.unpack_from("<I", element)[0] not in (MI_MATRIX, MI_MATRIX << 24):
        raise MatLayoutError(f"its compressed element at byte {pos} does not hold a variable")
    return element


def _sub(element: bytes, order: str, pos: int, what: str) -> tuple[int, bytes, int]:
    """(type, data, next position) of the sub-element at `pos`: a normal one, or a small one (data in the
    tag's second word)."""
    if pos + 8 > len(element):
        raise MatLayoutError(f"a variable's {what} {_be(what)} missing")
    word, size = struct.unpack_from(order + "II", element, pos)
    if word >> 16:  # small data element format: byte count in the upper half of the first word
        kind, size = word & 0xFFFF, word >> 16
        if size > 4:
            raise MatLayoutError(f"the tag of a variable's {what} is malformed")
        return kind, element[pos + 4:pos + 4 + size], pos + 8
    end = pos + 8 + size
    if end > len(element):
        raise MatLayoutError(f"a variable's {what} {_be(what)} cut short")
    return word, element[pos + 8:end], pos + 8 + (size + 7) // 8 * 8


def _be(what: str) -> str:
    return "are" if what.endswith("s") else "is"


def _header(element: bytes, order: str) -> tuple[int, tuple[int, ...], str, int]:
    """(array flags, dimensions, name, position of the real part) of a miMATRIX element."""
    kind, size = struct.unpack_from(order + "II", element, 0)
    if kind != MI_MATRIX or 8 + size > len(element):
        raise MatLayoutError("a variable's element is cut short")
    body = element[:8 + size]
    kind, flags, pos = _sub(body, order, 8, "array flags")
    if kind != MI_UINT32 or len(flags) != 8:
        raise MatLayoutError("a variable's array flags are malformed")
    kind, dims, pos = _sub(body, order, pos, "dimensions")
    if kind != MI_INT32 or not dims or len(dims) % 4:
        raise MatLayoutError("a variable's dimensions are malformed")
    kind, name, pos = _sub(body, order, pos, "name")
    if kind != MI_INT8:
        raise MatLayoutError("a variable's name is malformed")
    shape = struct.unpack(order + f"{len(dims) // 4}i", dims)
    return struct.unpack_from(order + "I", flags)[0], shape, name.decode("ascii", "replace"), pos


def _checked(element: bytes, order: str, header: bytes, wanted: str) -> MatVariable:
    """The variable, its values checked when it is a real numeric array (the only kind scipy then reads)."""
    flags, shape, name, pos = _header(element, order)
    kind = CLASSES.get(flags & 0xFF, f"class {flags & 0xFF}") + (" complex" if flags & COMPLEX else "")
    if flags & 0xFF not in NUMERIC_CLASSES or flags & COMPLEX or any(n < 0 for n in shape):
        return MatVariable(name, kind, shape, None)
    data_type, values, end = _sub(element, order, pos, "values")
    count = 1
    for n in shape:
        count *= n
    code = VALUE_CODES.get(data_type)
    if code is None or len(values) != count * struct.calcsize(code):
        raise MatLayoutError(f"its '{wanted}' is damaged, not holding {count} {kind} values")
    size = struct.unpack_from(order + "I", element, 4)[0]
    if not end - 8 < 8 + size <= end:  # the values end the element (up to their padding to 8 bytes)
        raise MatLayoutError(f"its '{wanted}' is damaged, holding more than a name, a shape and values")
    return MatVariable(name, kind, shape, header + element[:8 + size])
