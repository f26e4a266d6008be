"""The service area (default: Vietnam with its islands; boxes or GeoJSON from GPS_SERVICE_AREA)
and the speed rule between two fixes, without a database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from portal.field import plausibility
from portal.field.plausibility import VIETNAM, parse_service_area, too_fast

IN_VIETNAM = {
    "Hà Nội": (21.0285, 105.8542), "TP. Hồ Chí Minh": (10.7769, 106.7009),
    "Đà Nẵng": (16.0544, 108.2022), "Huế": (16.4637, 107.5909), "Lũng Cú": (23.392, 105.32),
    "Móng Cái": (21.5246, 107.9661), "Trà Cổ": (21.47, 108.05), "Mũi Cà Mau": (8.6, 104.72),
    "Phú Quốc": (10.22, 103.96), "Côn Đảo": (8.68, 106.6), "Điện Biên Phủ": (21.386, 103.023),
    "Lào Cai": (22.4856, 103.9707), "Sa Pa": (22.336, 103.844), "Hà Giang": (22.823, 104.984),
    "Cao Bằng": (22.666, 106.258), "Lạng Sơn": (21.853, 106.761), "Vinh": (18.679, 105.681),
    "Đồng Hới": (17.4833, 106.6), "Đà Lạt": (11.94, 108.44), "Buôn Ma Thuột": (12.67, 108.04),
    "Pleiku": (13.98, 108.0), "Kon Tum": (14.35, 108.0), "Nha Trang": (12.24, 109.19),
    "Quy Nhơn": (13.78, 109.22), "Vũng Tàu": (10.346, 107.084), "Cần Thơ": (10.045, 105.746),
    "Hà Tiên": (10.383, 104.488), "Châu Đốc": (10.70, 105.117), "Tây Ninh": (11.31, 106.10),
    "Mộc Bài": (11.07, 106.17), "Bạch Long Vĩ": (20.13, 107.72), "Lý Sơn": (15.38, 109.12),
    "Phú Quý": (10.52, 108.94), "Cồn Cỏ": (17.16, 107.34), "Thổ Chu": (9.28, 103.47),
    "Lao Bảo": (16.62, 106.59), "Cầu Treo": (18.38, 105.15), "Mường Lát": (20.53, 104.6),
    "A Lưới": (16.27, 107.23), "Mũi Đôi": (12.65, 109.46), "Trường Sa": (8.644, 111.92),
    "Hoàng Sa (Phú Lâm)": (16.83, 112.34),
}
ELSEWHERE = {
    "Mountain View": (37.42, -122.08), "near Saint Petersburg": (60.0, 30.0),
    "New York": (40.72, -74.0), "Jakarta": (-6.11, 106.68), "Null Island": (0.0, 0.0),
    "Bangkok": (13.75, 100.5), "Vientiane": (17.97, 102.6), "Phnom Penh": (11.556, 104.928),
    "Nanning": (22.82, 108.32), "Kunming": (25.04, 102.71), "Manila": (14.6, 120.98),
    "Singapore": (1.35, 103.82), "Haikou": (20.04, 110.34), "Sanya": (18.25, 109.5),
    "Luang Prabang": (19.89, 102.13), "Xam Neua": (20.42, 104.05), "Kampot": (10.61, 104.18),
    "Savannakhet": (16.55, 104.75), "Pakse": (15.12, 105.8), "Stung Treng": (13.52, 105.97),
    "Ban Lung": (13.74, 106.98), "Sihanoukville": (10.63, 103.5), "Taipei": (25.03, 121.56),
}


@pytest.mark.parametrize("place", sorted(IN_VIETNAM))
def test_vietnam_holds_its_cities_borders_and_islands(place):
    assert VIETNAM.contains(*IN_VIETNAM[place])


@pytest.mark.parametrize("place", sorted(ELSEWHERE))
def test_vietnam_does_not_hold_its_neighbours_nor_the_reported_positions(place):
    assert not VIETNAM.contains(*ELSEWHERE[place])


def test_the_service_area_is_configured_by_boxes_or_geojson(tmp_path):
    assert parse_service_area("") is VIETNAM
    assert parse_service_area("off") is None
    hanoi = parse_service_area("20.5,105.3,21.5,106.3; 10.3,106.3,11.2,107.1")
    assert hanoi.contains(21.0285, 105.8542) and hanoi.contains(10.7769, 106.7009)
    assert not hanoi.contains(16.0544, 108.2022)
    geometry = {"type": "Polygon", "coordinates": [[[106.3, 10.3], [107.1, 10.3],
                                                    [107.1, 11.2], [106.3, 11.2]]]}
    inline = parse_service_area(json.dumps(geometry))
    path = tmp_path / "area.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry, "properties": {}}]}))
    from_file = parse_service_area(str(path))
    for area in (inline, from_file):
        assert area.contains(10.7769, 106.7009) and not area.contains(21.0285, 105.8542)


@pytest.mark.parametrize("raw, says", [
    ("north of here", "is not a box"),
    ("21.5,105.3,20.5,106.3", "south < north"),
    ('{"type": "Point", "coordinates": [106, 10]}', "Polygon"),
    ('{"type": "Polygon"', "not valid JSON"),
])
def test_a_wrong_service_area_says_what_is_wrong(raw, says):
    with pytest.raises(ValueError, match="GPS_SERVICE_AREA") as error:
        parse_service_area(raw)
    assert says in str(error.value)


@dataclass
class Fix:
    lat: float
    lon: float
    accuracy_m: float | None
    recorded_at: datetime


T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
LIMIT = plausibility.DEFAULT_MAX_SPEED_KMH / 3.6


def test_too_fast_allows_for_both_accuracies_and_the_slack():
    a = Fix(10.7769, 106.7009, 10, T0)
    jitter = Fix(10.7769 + 100 / 111_195, 106.7009, 20, T0 + timedelta(seconds=1))
    assert not too_fast(a, jitter, LIMIT)  # 100 m in 1 s, but within 10 + 20 + 50 m
    jump = Fix(10.7769 + 200 / 111_195, 106.7009, 5, T0 + timedelta(seconds=1))
    assert too_fast(a, jump, LIMIT)  # 200 m in 1 s: 135 m beyond 10 + 5 + 50 m
    ride = Fix(10.7769 + 2_000 / 111_195, 106.7009, 10, T0 + timedelta(minutes=1))
    assert not too_fast(a, ride, LIMIT) and not too_fast(ride, a, LIMIT)  # 120 km/h
    assert too_fast(a, Fix(ride.lat, ride.lon, 10, T0 + timedelta(seconds=40)), LIMIT)
    assert too_fast(a, Fix(21.0285, 105.8542, 10, T0 + timedelta(hours=7)), LIMIT)
    assert not too_fast(a, Fix(21.0285, 105.8542, 10, T0 + timedelta(hours=8)), LIMIT)
