"""This user's seal on the memo rows it writes: an HMAC-SHA256 with a key derived from the
user's secret (:mod:`kedro_dolt.engine.user_key`: ``$XDG_CONFIG_HOME/kedro-dolt/memo.key``,
0600 in a 0700 directory, made on first use; ``KEDRO_DOLT_MEMO_KEY`` names another file). A
row edited by hand no longer carries a valid seal, so it is not trusted as this user's (see
:mod:`.trust`)."""

from __future__ import annotations

import hashlib
import hmac
import json

from ...engine.user_key import KEY_ENV, derived

__all__ = ["KEY_ENV", "seal", "sealed"]


def seal(row: dict[str, str]) -> str:
    """The seal of a memo row's content (every column but the seal); "" without a key."""
    key = derived("memo seal")
    if key is None:
        return ""
    text = json.dumps(row, sort_keys=True)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def sealed(row: dict[str, str], found: object) -> bool:
    """Whether ``found`` is this user's seal of ``row``."""
    if not isinstance(found, str) or not found:
        return False
    expected = seal(row)
    return bool(expected) and hmac.compare_digest(expected, found)
