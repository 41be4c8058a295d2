"""Keep remote credentials out of every message, log line, manifest and repr.

Remote urls may carry credentials (``https://user:TOKEN@host/org/db``) and Dolt copies the url
into its error messages, which kedro-dolt passes on and Kedro logs. Everything that can show a
url goes through :func:`mask_url_credentials`; :class:`~kedro_dolt.errors.DoltError` applies it
to every error it builds, so no error path can forget it.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_url_credentials"]

MASK = "***"

# scheme://authority then the rest of the url. The authority ends at the first `/`, `?`, `#`
# (RFC 3986, and how Go's url.Parse, hence Dolt, splits it), so an `@` in a path is not a
# credential; the last `@` of the authority ends the userinfo, so an unencoded `@` inside a
# password is still masked. Whitespace, quotes and brackets end a url inside a message.
_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)"
    r"(?P<authority>[^/?#\s'\"<>`]*)"
    r"(?P<rest>[^\s'\"<>`]*)"
)
# `user:<not a port>`: the authority of a url whose password holds an unencoded `/`, `?`, `#`.
_BROKEN_PASSWORD = re.compile(r"[^:\[\]]*:(?![0-9]*$)")
# Query parameters whose value is a secret: ?token=..., &password=..., X-Amz-Signature=...
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;][^=&;#\s]*(?:token|pass|pwd|secret|key|sig|credential|auth)[^=&;#\s]*=)"
    r"(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)


def _mask_userinfo(userinfo: str) -> str:
    user, colon, password = userinfo.partition(":")
    if colon and password:
        return f"{user}:{MASK}"  # the user name helps debugging; the password is the secret
    # `TOKEN@host` and `TOKEN:@host`: services take access tokens as the user name.
    return MASK


def _mask_one(match: re.Match[str]) -> str:
    authority, rest = match["authority"], match["rest"]
    userinfo, at, host = authority.rpartition("@")
    if at:
        authority = f"{_mask_userinfo(userinfo)}@{host}"
    elif _BROKEN_PASSWORD.match(authority) and "@" in rest:
        # `user:pa/ss@host`: an unencoded `/`, `?` or `#` in a password makes the url invalid
        # (Go: "invalid port"), and Dolt quotes such urls in its error: mask up to the `@`.
        authority = f"{authority.partition(':')[0]}:{MASK}"
        rest = rest[rest.index("@") :]
    rest = _SECRET_PARAM.sub(lambda m: f"{m['name']}{MASK}" if m["value"] else m[0], rest)
    return f"{match['scheme']}{authority}{rest}"


def mask_url_credentials(text: str) -> str:
    """``text`` with the credentials of every url in it replaced by ``***``.

    ``https://user:s3cr3t@host/db`` -> ``https://user:***@host/db``; a bare user part
    (``https://TOKEN@host``) is masked whole; secret-looking query values (``?token=``,
    ``password=``, ``X-Amz-Signature=``) too. Text without such urls is returned unchanged.
    """
    if "://" not in text:
        return text
    return _URL.sub(_mask_one, text)
