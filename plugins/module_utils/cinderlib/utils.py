# Copyright: contributors to the cinderlib.storage collection
# Apache License 2.0 (see LICENSE)
"""``cinderlib.utils``: cinderlib's helpers for lists of resources, kept for
programs written for cinderlib that use them."""

from __future__ import annotations

from typing import Any


def find_by_id(resource_id: Any, elements: list | None) -> tuple[int | None, Any]:
    """The index and the element of ``elements`` whose ``id`` is ``resource_id``; (None, None) if none."""
    for index, element in enumerate(elements or ()):
        if element.id == resource_id:
            return index, element
    return None, None


def add_by_id(resource: Any, elements: list | None) -> None:
    """Put ``resource`` in ``elements`` in place of the one with its id, or at the end."""
    if elements is None:
        return
    index, _found = find_by_id(resource.id, elements)
    if index is None:
        elements.append(resource)
    else:
        elements[index] = resource
