"""The client's channel to the gateway: plaintext, TLS (mutual with a client certificate), and a
bearer token, with its PEM files checked before any call."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import grpc


def connect(options: argparse.Namespace) -> grpc.Channel:
    """Plaintext by default; TLS (mutual with a client certificate) and a bearer token on
    request. A token goes over TLS, or in the clear only to this machine."""
    use_tls = options.tls or options.tls_ca or options.tls_cert
    if not use_tls and not options.token:
        return grpc.insecure_channel(options.target)
    if use_tls:
        _check_tls_files(options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read_file(options.tls_ca),
            private_key=read_file(options.tls_key),
            certificate_chain=read_file(options.tls_cert),
        )
    else:
        credentials = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    if options.token:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(options.token)
        )
    return grpc.secure_channel(options.target, credentials)


def _check_tls_files(options: argparse.Namespace) -> None:
    """ValueError naming the flag of a PEM file that TLS cannot use. gRPC reads them only when it
    connects, and then logs OpenSSL's complaints and fails the call as if the gateway were down;
    Python's ssl module reads them the same way at once."""
    for path in (options.tls_ca, options.tls_cert, options.tls_key):
        read_file(path)  # a missing or unreadable file is an OSError naming it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # This context only reads the files, it never connects: no security level of OpenSSL's
    # ("ee key too small"), so that it refuses no key that gRPC itself would use.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if options.tls_ca is not None:
        try:
            context.load_verify_locations(cafile=options.tls_ca)
        except ssl.SSLError:
            raise ValueError(f"--tls-ca: no PEM certificate in {options.tls_ca}") from None
    if options.tls_cert is not None:
        try:
            # An empty password: gRPC cannot use an encrypted key, so it is refused, not
            # prompted for.
            context.load_cert_chain(options.tls_cert, options.tls_key, password=b"")
        except ssl.SSLError:
            raise ValueError(
                f"--tls-cert, --tls-key: {options.tls_cert} and {options.tls_key} are not a PEM "
                "certificate and its unencrypted private key"
            ) from None


def read_file(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()
