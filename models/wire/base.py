"""What every wire schema refuses: numbers that are not finite, and device clocks no real clock shows.

JSON as Python writes it carries NaN and Infinity, and pydantic accepts them into a float by default: a
liveness `depth` of NaN or an embedding of Infinity was stored, and compares false with every threshold.
`WireModel` refuses them in every float of every schema (error type `finite_number`, answered by the
server as reason code `non_finite_number`). `DeviceClock` is a device's time with its zone in a range a
working clock can show (the server answers `clock_implausible`): a heartbeat from year 9999 once overflowed
the clock-offset column on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

EARLIEST_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_CLOCK = datetime(2100, 1, 1, tzinfo=UTC)
# The largest clock offset a device may have and the server store (a 32-bit column: about 24.8 days).
MAX_CLOCK_OFFSET_MS = 2**31 - 1
CLOCK_OUT_OF_RANGE = "clock_out_of_range"


class WireModel(BaseModel):
    """Base of every wire schema: no NaN or ±Infinity in any float, however deeply nested."""

    model_config = ConfigDict(allow_inf_nan=False)


def _plausible(value: datetime) -> datetime:
    if not EARLIEST_CLOCK <= value < LATEST_CLOCK:
        raise PydanticCustomError(CLOCK_OUT_OF_RANGE, "the device clock shows {shown}, outside {earliest} to {latest}",
                                  {"shown": value.isoformat(), "earliest": EARLIEST_CLOCK.date().isoformat(),
                                   "latest": LATEST_CLOCK.date().isoformat()})
    return value


DeviceClock = Annotated[AwareDatetime, AfterValidator(_plausible)]
