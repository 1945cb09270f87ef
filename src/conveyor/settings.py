"""Process configuration from the environment (prefix CONVEYOR_), built by the edges and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'conveyor.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'blobs').resolve()}"
