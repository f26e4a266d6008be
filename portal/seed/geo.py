"""Geography of the demo: the two cities, their districts (with centre coordinates and a few
wards) and the codes that depend on the city (landline area code, plate, ID and tax prefixes).

Customers are placed near the centre of their district, so the district written in the address
and the point on the map agree. Every district centre is within ~12 km of the city centre.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class District(NamedTuple):
    name: str
    lat: float
    lon: float
    wards: tuple[str, ...]


class City(NamedTuple):
    code: str
    name: str  # as written in addresses
    region: str  # as used for teams and field agents
    lat: float
    lon: float
    landline_prefix: str  # area code of fixed lines
    plate_codes: tuple[str, ...]  # car plate province codes
    id_province: str  # first three digits of a citizen ID (CCCD)
    tax_prefix: str  # first two digits of an enterprise tax code
    districts: tuple[District, ...]


def _numbered(n: int) -> tuple[str, ...]:
    return tuple(f"Phường {i}" for i in range(1, n + 1))


HCMC = City(
    code="HCM", name="TP. Hồ Chí Minh", region="Hồ Chí Minh", lat=10.7769, lon=106.7009,
    landline_prefix="028", plate_codes=("51", "51", "50"), id_province="079", tax_prefix="03",
    districts=(
        District("Quận 1", 10.7756, 106.7019, ("Phường Bến Nghé", "Phường Bến Thành",
                 "Phường Đa Kao", "Phường Tân Định", "Phường Cầu Ông Lãnh", "Phường Cô Giang")),
        District("Quận 3", 10.7843, 106.6844, _numbered(14)),
        District("Quận 4", 10.7579, 106.7040, _numbered(16)),
        District("Quận 5", 10.7540, 106.6634, _numbered(14)),
        District("Quận 6", 10.7480, 106.6352, _numbered(14)),
        District("Quận 7", 10.7340, 106.7220, ("Phường Tân Phong", "Phường Tân Phú",
                 "Phường Tân Hưng", "Phường Bình Thuận", "Phường Phú Mỹ", "Phường Tân Kiểng")),
        District("Quận 8", 10.7240, 106.6286, _numbered(16)),
        District("Quận 10", 10.7730, 106.6679, _numbered(15)),
        District("Quận 11", 10.7629, 106.6505, _numbered(16)),
        District("Quận 12", 10.8672, 106.6413, ("Phường Tân Chánh Hiệp", "Phường Thới An",
                 "Phường Hiệp Thành", "Phường Tân Thới Hiệp", "Phường An Phú Đông")),
        District("Quận Bình Thạnh", 10.8106, 106.7091, ("Phường 1", "Phường 2", "Phường 3",
                 "Phường 12", "Phường 13", "Phường 25", "Phường 26")),
        District("Quận Phú Nhuận", 10.7991, 106.6800, _numbered(15)),
        District("Quận Gò Vấp", 10.8387, 106.6653, _numbered(17)),
        District("Quận Tân Bình", 10.8015, 106.6527, _numbered(15)),
        District("Quận Tân Phú", 10.7918, 106.6282, ("Phường Tân Sơn Nhì", "Phường Tây Thạnh",
                 "Phường Sơn Kỳ", "Phường Tân Quý", "Phường Phú Thọ Hòa", "Phường Hiệp Tân")),
        District("Quận Bình Tân", 10.7653, 106.6033, ("Phường Bình Hưng Hòa",
                 "Phường Bình Trị Đông", "Phường An Lạc", "Phường Tân Tạo")),
        District("TP. Thủ Đức", 10.8494, 106.7537, ("Phường Thảo Điền", "Phường An Phú",
                 "Phường Linh Trung", "Phường Hiệp Bình Chánh", "Phường Phước Long B")),
    ),
)

HANOI = City(
    code="HN", name="Hà Nội", region="Hà Nội", lat=21.0285, lon=105.8542,
    landline_prefix="024", plate_codes=("30", "30", "29"), id_province="001", tax_prefix="01",
    districts=(
        District("Quận Hoàn Kiếm", 21.0288, 105.8525, ("Phường Hàng Bạc", "Phường Hàng Trống",
                 "Phường Tràng Tiền", "Phường Lý Thái Tổ", "Phường Cửa Nam")),
        District("Quận Ba Đình", 21.0340, 105.8140, ("Phường Kim Mã", "Phường Ngọc Hà",
                 "Phường Liễu Giai", "Phường Đội Cấn", "Phường Giảng Võ")),
        District("Quận Đống Đa", 21.0181, 105.8290, ("Phường Láng Hạ", "Phường Ô Chợ Dừa",
                 "Phường Trung Liệt", "Phường Kim Liên", "Phường Văn Miếu")),
        District("Quận Hai Bà Trưng", 21.0060, 105.8580, ("Phường Bạch Mai", "Phường Lê Đại Hành",
                 "Phường Minh Khai", "Phường Thanh Nhàn", "Phường Vĩnh Tuy")),
        District("Quận Cầu Giấy", 21.0362, 105.7906, ("Phường Dịch Vọng", "Phường Nghĩa Đô",
                 "Phường Quan Hoa", "Phường Yên Hòa", "Phường Trung Hòa")),
        District("Quận Thanh Xuân", 20.9936, 105.8122, ("Phường Khương Trung",
                 "Phường Nhân Chính", "Phường Thượng Đình", "Phường Kim Giang")),
        District("Quận Hoàng Mai", 20.9746, 105.8635, ("Phường Đại Kim", "Phường Định Công",
                 "Phường Giáp Bát", "Phường Hoàng Liệt", "Phường Tương Mai")),
        District("Quận Long Biên", 21.0436, 105.8889, ("Phường Bồ Đề", "Phường Gia Thụy",
                 "Phường Ngọc Lâm", "Phường Việt Hưng")),
        District("Quận Tây Hồ", 21.0703, 105.8180, ("Phường Quảng An", "Phường Xuân La",
                 "Phường Nhật Tân", "Phường Bưởi")),
        District("Quận Nam Từ Liêm", 21.0124, 105.7652, ("Phường Mỹ Đình 1", "Phường Mỹ Đình 2",
                 "Phường Mễ Trì", "Phường Cầu Diễn")),
        District("Quận Bắc Từ Liêm", 21.0707, 105.7630, ("Phường Cổ Nhuế 1",
                 "Phường Xuân Đỉnh", "Phường Phú Diễn", "Phường Đông Ngạc")),
        District("Quận Hà Đông", 20.9714, 105.7788, ("Phường Văn Quán", "Phường Mộ Lao",
                 "Phường Hà Cầu", "Phường Yết Kiêu", "Phường La Khê")),
    ),
)

CITIES = (HCMC, HANOI)
CITY_RADIUS_KM = 15.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def offset(lat: float, lon: float, metres: float, bearing_rad: float) -> tuple[float, float]:
    """The point ``metres`` away from (lat, lon) in direction ``bearing_rad`` (flat earth)."""
    dlat = metres * math.cos(bearing_rad) / 111_320.0
    dlon = metres * math.sin(bearing_rad) / (111_320.0 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon
