"""Fixed vocabularies of the synthetic marketing world.

Categorical columns are stored as small integer codes into these tuples; the decision log
writes the strings. Keeping the vocabularies fixed makes featurisation stable across batches,
runs and logs.
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = ("apparel", "electronics", "home", "beauty", "sports", "grocery")
SEGMENTS: tuple[str, ...] = ("bargain_hunter", "loyal", "new", "lapsed")
WEATHER: tuple[str, ...] = ("sunny", "cloudy", "rain", "snow")
DAYPARTS: tuple[str, ...] = ("morning", "afternoon", "evening", "night")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS: tuple[str, ...] = ("email", "push", "sms", "web")
DEVICES: tuple[str, ...] = ("mobile", "desktop")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
TONES: tuple[str, ...] = ("friendly", "urgent", "premium")

#: hour (0..23) -> daypart code: morning 6-11, afternoon 12-17, evening 18-22, night 23-5.
HOUR_TO_DAYPART: tuple[int, ...] = tuple(
    0 if 6 <= h <= 11 else 1 if 12 <= h <= 17 else 2 if 18 <= h <= 22 else 3 for h in range(24)
)
