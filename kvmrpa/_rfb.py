"""The RFB (VNC) handshake shared by the VNC video source and the VNC input driver.

asyncvnc does the handshake and authentication; :func:`rfb_connect` bounds it in time
and closes the socket on every failure.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

__all__ = ["rfb_connect"]

_patched = False


def _asyncvnc() -> Any:
    """asyncvnc, with its VNC-password DES taken from cryptography's ``decrepit`` module.

    asyncvnc reads ``algorithms.TripleDES`` from the old location with an 8-byte key,
    both deprecated by newer cryptography releases (warnings on every password login,
    removal announced); the same cipher is built here from the supported forms.
    """
    global _patched
    import asyncvnc

    if not _patched:
        _patched = True
        try:
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
            from cryptography.hazmat.primitives.ciphers import algorithms
        except ImportError:  # older cryptography: the old location is the only one
            return asyncvnc
        def des(key: bytes) -> Any:
            # VNC authentication is single DES; 3DES with K1 = K2 = K3 is the same cipher
            # without the deprecated 8-byte key form.
            return TripleDES(key * 3 if len(key) == 8 else key)

        asyncvnc.algorithms = types.SimpleNamespace(AES=algorithms.AES, TripleDES=des)
    return asyncvnc


async def rfb_connect(host: str, port: int, user: str | None, password: str | None,
                      timeout: float) -> Any:
    """An authenticated ``asyncvnc.Client`` within ``timeout`` seconds.

    The socket is closed on every failure (timeout, cancellation, refused
    authentication), so a server that accepts and then hangs leaks nothing; on success
    the caller owns ``client.writer`` and closes it.
    """
    asyncvnc = _asyncvnc()
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncvnc.Client.create(reader, writer, user, password)
        except BaseException:
            writer.close()
            raise
