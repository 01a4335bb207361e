"""urllib3's failures, as the requests and xero-python guards meet them (both send through urllib3)."""

from __future__ import annotations

import urllib3

try:  # a hostname that does not match the certificate (urllib3 >= 1.26.8; before, the standard library's error)
    from urllib3.util.ssl_match_hostname import CertificateError as HostnameMismatch
except ImportError:  # pragma: no cover - older urllib3
    from ssl import CertificateError as HostnameMismatch  # type: ignore[assignment]

# Raised only while connecting (refused; a failed name lookup is a NameResolutionError, a NewConnectionError; a
# connect timeout; a certificate refused in the handshake): the request never left.
CONNECTING = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError, HostnameMismatch)
# Failures of a connection; a MaxRetryError carries one as its reason.
TRANSPORT = (urllib3.exceptions.ProtocolError, urllib3.exceptions.TimeoutError, urllib3.exceptions.SSLError,
             urllib3.exceptions.ProxyError, urllib3.exceptions.NewConnectionError)
