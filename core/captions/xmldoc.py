"""XML documents parsed safely (defusedxml: no entities, no external references, not
too deep), for TTML and YouTube's srv1-3."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import errors
from .cues import Truncated, UnsafeXml

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

#: How deeply a TTML document may nest elements. Real ones nest tt/body/div/p/span/span:
#: a handful. The walk below recurses, so a deeper file is refused before it starts.
MAX_XML_DEPTH = 200


def xml_root(text: str) -> Element:
    """The document element, parsed safely (no entities, no external references, not
    too deep)."""
    from xml.etree.ElementTree import ParseError as XmlParseError

    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text, count=1)
    try:
        root = SafeET.fromstring(body)
    except DefusedXmlException as e:
        raise UnsafeXml(
            f"refused: the XML declares entities or external references ({e})"
        ) from None
    except XmlParseError as e:
        message = str(e)
        if message.startswith(("no element found", "unclosed token")):
            raise Truncated(f"the XML ends early ({message}): truncated?") from None
        raise errors.ParseError(f"not well-formed XML: {message}") from None
    if _deeper_than(root, MAX_XML_DEPTH):
        raise errors.ParseError(f"the XML nests elements more than {MAX_XML_DEPTH} levels deep")
    return root  # type: ignore[no-any-return]


def _deeper_than(root: Element, limit: int) -> bool:
    """Does the tree nest more than `limit` elements? (No recursion: that is what it guards.)"""
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in el)
    return False


def local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def attr_of(el: Element, name: str) -> str | None:
    for k, v in el.attrib.items():
        if local_name(k) == name:
            return v
    return None
