"""Stream details probed by MediaInfo from a video in the library bucket, through ranged GETs."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from rendergate.media import streams

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "sample-720p.mkv"


def test_a_video_is_probed_reading_only_part_of_it(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    data = SAMPLE.read_bytes()
    boto3.client("s3").put_object(Bucket="library-bucket", Key="library/Sample/Sample.mkv", Body=data)
    monkeypatch.setattr(streams, "BLOCK", 16 * 1024)
    source = streams.RangedObject("library-bucket", "library/Sample/Sample.mkv")

    details = streams.details(streams.read_tracks(source))

    assert details["video"] == [
        {"codec": "h264", "aspect": 1.78, "width": 1280, "height": 720, "durationinseconds": 30}
    ]
    assert details["audio"] == [{"codec": "aac", "language": "eng", "channels": 6}]
    assert details["subtitle"] == [{"language": "fra"}]
    assert 0 < source.bytes_read < len(data) / 2


def test_a_missing_or_unreadable_video_is_a_probe_failure(aws: None) -> None:
    with pytest.raises(streams.ProbeFailed):
        streams.probe("library-bucket", "library/none.mkv")
    boto3.client("s3").put_object(Bucket="library-bucket", Key="library/x.mkv", Body=b"not a video at all" * 100)
    with pytest.raises(streams.ProbeFailed):
        streams.probe("library-bucket", "library/x.mkv")
