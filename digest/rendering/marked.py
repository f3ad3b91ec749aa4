"""A variant body split once at its recipient markers, filled per recipient as text and as wire bytes.

The body of a variant is the same for thousands of recipients except for a few values (greeting,
links). Splitting it at the markers once makes filling it in a join of the pieces (no scan of the
body per marker, and no value can be mistaken for a marker). The quoted-printable encoding of the
literal pieces is done once too, each piece encoded on its own and ended with a soft line break
(``=`` CRLF, which decoders remove), so that every piece and every value starts at column 0:
the encoded pieces and the encoded values of one recipient then join into valid quoted-printable
whose decoded content is exactly the filled-in text. Encoding 30 KB per message was the largest
rendering cost of the send path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from digest.rendering.headers import quoted_printable_piece


class MarkedText:
    """``text`` with the markers of ``markers`` (marker -> field name) cut out."""

    __slots__ = ("_encoded", "_piecewise", "fields", "pieces")

    def __init__(self, text: str, markers: Mapping[str, str]):
        pattern = re.compile("|".join(re.escape(m) for m in markers))
        self._set(tuple(pattern.split(text)), tuple(markers[m] for m in pattern.findall(text)))

    @classmethod
    def from_parts(cls, pieces: tuple[str, ...], fields: tuple[str, ...]) -> MarkedText:
        """The text already cut: ``pieces`` around the ``fields`` (one more piece than fields), as
        another process cut it (digest/rendering/shared_bodies.py)."""
        if len(pieces) != len(fields) + 1:
            raise ValueError(f"{len(pieces)} pieces around {len(fields)} fields")
        marked = cls.__new__(cls)
        marked._set(pieces, fields)
        return marked

    def _set(self, pieces: tuple[str, ...], fields: tuple[str, ...]) -> None:
        self.pieces = pieces  # one more than fields
        self.fields = fields
        self._encoded: tuple[bytes, ...] | None = None
        # A CR next to a marker could pair with an LF across an empty value; such (rare) bodies
        # are encoded whole, where line ends are normalised over the complete text.
        self._piecewise = not any("\r" in piece for piece in pieces)

    def fill(self, values: Mapping[str, str]) -> str:
        out = [self.pieces[0]]
        for name, piece in zip(self.fields, self.pieces[1:], strict=True):
            out += (values[name], piece)
        return "".join(out)

    def fill_quoted_printable(self, values: Mapping[str, str]) -> bytes | None:
        """The filled-in text as quoted-printable with CRLF line ends and a final line break (the
        body of a MIME part); None when the body holds a CR or a value a line break (then encode
        ``fill`` whole)."""
        if not self._piecewise:
            return None
        if self._encoded is None:
            self._encoded = tuple(quoted_printable_piece(p, final=False) for p in self.pieces)
        encoded = self._encoded
        out = [encoded[0]]
        for name, piece in zip(self.fields, encoded[1:], strict=True):
            value = values[name]
            if "\n" in value or "\r" in value:
                return None
            out += (quoted_printable_piece(value, final=False), piece)
        body = b"".join(out)
        # The final line break: after a soft one ("=" ends a line only as a soft break, a literal
        # "=" being encoded), an empty line; an empty text is one line break.
        return body + b"\r\n" if not body or body.endswith(b"=\r\n") else body
