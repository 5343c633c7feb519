"""The archive's scheduled upkeep: copy complete buckets into S3 segments."""

from typing import Any

from aws_lambda_powertools import Logger
from chalice.app import Blueprint, CloudWatchEvent, Rate

from functions import archive, settings

bp = Blueprint(__name__)
logger = Logger(service="archiver")


@bp.schedule(Rate(5, unit=Rate.MINUTES), name="archive_segmenter")
def write_segments(event: CloudWatchEvent) -> dict[str, Any]:
    written = archive.write_segments(settings.load())
    if written:
        logger.info("archive segments written", buckets=written)
    return {"segments_written": written}
