"""Process configuration from the environment (prefix CONVEYOR_), built by the edges and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a process needs to know about its surroundings.

    Per-pipeline behaviour (retention, rules) lives in the database settings table instead, so every
    process of a scaled-out deployment sees the same values.
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    data_dir: Path = Path("./conveyor-data")
    database_url: str | None = None
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    # Buckets other than the storage bucket that ``s3://`` references may name (a JSON list).
    s3_reference_buckets: list[str] = Field(default_factory=list)

    log_level: str = "INFO"
    log_format: str = "console"

    lease_seconds: float = Field(default=60.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)
    claim_batch: int = Field(default=10, ge=1)
    poll_seconds: float = Field(default=0.5, gt=0)

    upload_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    upload_max_files: int = Field(default=100, gt=0)
    multipart_max_parts: int = Field(default=1000, gt=0)
    multipart_max_header_bytes: int = Field(default=8 * 1024, gt=0)
    s3_poll_seconds: float = Field(default=30.0, gt=0)
    watch_poll_seconds: float = Field(default=0.5, gt=0)

    # Bounds on untrusted files (content.Limits has the why of each); CONVEYOR_LIMIT_PAGES=200 etc.
    limit_file_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    limit_pages: int = Field(default=5000, gt=0)
    limit_image_pixels: int = Field(default=150_000_000, gt=0)
    limit_zip_member_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    limit_zip_total_bytes: int = Field(default=2 * 1024 * 1024 * 1024, gt=0)
    limit_zip_ratio: float = Field(default=200.0, gt=1)
    limit_zip_members: int = Field(default=100_000, gt=0)
    limit_json_depth: int = Field(default=512, gt=0, le=1024)
    limit_seconds_per_file: float = Field(default=900.0, gt=0)
    limit_memory_bytes: int = Field(default=3 * 1024 * 1024 * 1024, ge=512 * 1024 * 1024)
    parse_workers: int = Field(default=0, ge=0)

    def limit_values(self) -> dict[str, Any]:
        """The ``limit_*`` fields without their prefix (plus ``parse_workers``): ``Limits(**...)``."""
        values: dict[str, Any] = {
            name.removeprefix("limit_"): getattr(self, name)
            for name in type(self).model_fields
            if name.startswith("limit_")
        }
        values["parse_workers"] = self.parse_workers
        return values

    # Batches: folders a batch may scan (a JSON list; nothing else, no symlink out of them), files per
    # chunk job, how long signed download links stay valid, and the secret that signs them (shared by
    # every process; without one, a random secret is kept in the database settings table).
    batch_roots: list[Path] = Field(default_factory=list)
    batch_chunk_size: int = Field(default=10, ge=1, le=1000)
    link_seconds: int = Field(default=3600, gt=0)
    link_secret: SecretStr | None = None
    # The API's address as users reach it, for links in reports (behind a proxy: its public URL).
    public_url: str = "http://127.0.0.1:8000"

    # The optional language model for timecard extraction (conveyor.ai): none unless a provider is set.
    ai_provider: Literal["anthropic", "bedrock", "openai"] | None = None
    ai_model: str | None = None
    ai_base_url: str | None = None
    ai_api_key: SecretStr | None = None
    ai_region: str | None = None
    ai_timeout_seconds: float = Field(default=60.0, gt=0)

    def model_values(self) -> dict[str, Any] | None:
        """The ``ai_*`` fields without their prefix (``ModelSettings(**...)``), None without a provider."""
        if self.ai_provider is None:
            return None
        return {
            name.removeprefix("ai_"): getattr(self, name)
            for name in type(self).model_fields
            if name.startswith("ai_") and getattr(self, name) is not None
        }

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'conveyor.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'blobs').resolve()}"
