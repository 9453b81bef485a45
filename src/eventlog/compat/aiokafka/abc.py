"""aiokafka.abc: the listener and token-provider base classes code subclasses."""

from __future__ import annotations

from typing import Any

from . import ConsumerRebalanceListener

__all__ = ["AbstractTokenProvider", "ConsumerRebalanceListener"]


class AbstractTokenProvider:
    """aiokafka's SASL/OAUTHBEARER token provider base: accepted (there is no network
    to authenticate to), its ``token()`` is never called in process."""

    async def token(self) -> str:
        raise NotImplementedError("subclasses of AbstractTokenProvider return a token")

    def extensions(self) -> dict[str, Any]:
        return {}
