"""TLS and mutual TLS for the gateway's port, from PEM files.

The files are read again when they change on disk (cert-manager and Kubernetes Secret volumes
replace them in place), so a rotated certificate is used from the next handshake on, with no
restart: gRPC asks for the current configuration before each handshake.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import grpc

log = logging.getLogger(__name__)


class TlsConfigError(ValueError):
    """The certificate files cannot serve TLS."""


def server_credentials(
    cert_file: Path, key_file: Path, client_ca_file: Path | None
) -> grpc.ServerCredentials:
    """TLS credentials; with a client CA, clients must present a certificate it signed."""
    files = _CertificateFiles(cert_file, key_file, client_ca_file)
    return grpc.dynamic_ssl_server_credentials(
        files.load(),
        # Returning None (keep the current configuration) is gRPC's documented contract; the
        # type stubs leave it out.
        files.reload_if_changed,  # type: ignore[arg-type]
        require_client_authentication=client_ca_file is not None,
    )


class _CertificateFiles:
    def __init__(self, cert_file: Path, key_file: Path, client_ca_file: Path | None) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self._client_ca_file = client_ca_file
        self._loaded_version: tuple[int, ...] = ()

    def load(self) -> grpc.ServerCertificateConfiguration:
        """Reads and checks the files; raises TlsConfigError naming the file at fault."""
        version = self._version()
        self._check()
        ca = self._client_ca_file.read_bytes() if self._client_ca_file is not None else None
        configuration = grpc.ssl_server_certificate_configuration(
            [(self._key_file.read_bytes(), self._cert_file.read_bytes())], root_certificates=ca
        )
        self._loaded_version = version
        return configuration

    def reload_if_changed(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each handshake; None keeps the configuration it has."""
        try:
            if self._version() == self._loaded_version:
                return None
            configuration = self.load()
        except (OSError, TlsConfigError) as exc:
            # Half-written files during a rotation: keep serving with the previous ones.
            log.warning("keeping the previous TLS certificate: %s", exc)
            return None
        log.info("TLS certificate files changed; using the new ones")
        return configuration

    def _version(self) -> tuple[int, ...]:
        paths = [self._cert_file, self._key_file]
        if self._client_ca_file is not None:
            paths.append(self._client_ca_file)
        return tuple(path.stat().st_mtime_ns for path in paths)

    def _check(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self._cert_file, self._key_file)
        except ssl.SSLError as exc:
            raise TlsConfigError(
                f"tls_cert_file {self._cert_file} and tls_key_file {self._key_file} "
                f"are not a PEM certificate chain and its private key: {exc.reason}"
            ) from exc
        if self._client_ca_file is not None:
            try:
                context.load_verify_locations(cafile=self._client_ca_file)
            except ssl.SSLError as exc:
                raise TlsConfigError(
                    f"tls_client_ca_file {self._client_ca_file} is not a PEM CA bundle: "
                    f"{exc.reason}"
                ) from exc
