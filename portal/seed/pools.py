"""Pools of Vietnamese names, streets and companies, drawn once from Faker (vi_VN) and combined
cheaply per row, so generating half a million customers never calls Faker per row."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from faker import Faker

# Faker's vi_VN lists are short and mix male and female middle names; these complete them with
# the most common family names and gendered middle/given names, in the Vietnamese order
# (family, middle, given).
_FAMILY_WEIGHTS = {
    "Nguyễn": 38, "Trần": 11, "Lê": 9, "Phạm": 7, "Hoàng": 4, "Huỳnh": 4, "Phan": 4, "Vũ": 3,
    "Võ": 3, "Đặng": 2, "Bùi": 2, "Đỗ": 2, "Hồ": 1.5, "Ngô": 1.5, "Dương": 1, "Lý": 0.5,
    "Mai": 0.5, "Trương": 0.7, "Đinh": 0.6, "Lâm": 0.4,
}
_MIDDLE_MALE = ("Văn", "Văn", "Văn", "Đức", "Minh", "Quốc", "Hữu", "Công", "Thanh", "Quang",
                "Hoàng", "Xuân", "Tấn", "Thế", "Anh", "Trọng", "Gia", "Bảo")
_MIDDLE_FEMALE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Kim", "Thanh", "Minh", "Hồng", "Mỹ",
                  "Bích", "Phương", "Thùy", "Hải", "Khánh", "Diệu")
_GIVEN_MALE = ("An", "Bình", "Cường", "Dũng", "Đạt", "Hải", "Hiếu", "Hòa", "Khánh", "Long",
               "Lộc", "Nghĩa", "Phong", "Sơn", "Tài", "Thắng", "Thịnh", "Toàn", "Tuấn", "Việt")
_GIVEN_FEMALE = ("Anh", "Hà", "Hạnh", "Hằng", "Hoa", "Huyền", "Nhung", "Nga", "Oanh", "Phương",
                 "Quyên", "Tâm", "Thư", "Trang", "Trinh", "Uyên", "Vy", "Giang", "Nhi", "My")

_COMPANY_FORMS = ("Công ty TNHH", "Công ty TNHH", "Công ty Cổ phần", "Công ty TNHH MTV",
                  "Doanh nghiệp tư nhân")
_COMPANY_TRADES = ("Thương mại", "Thương mại Dịch vụ", "Xây dựng", "Vận tải", "Đầu tư",
                   "Sản xuất", "Thực phẩm", "Công nghệ", "Du lịch", "Nội thất", "Kỹ thuật",
                   "Xuất nhập khẩu", "Dược phẩm", "May mặc", "Logistics")
_COMPANY_NAMES = ("An Phát", "Hưng Thịnh", "Phú Gia", "Minh Long", "Thành Công", "Việt Tiến",
                  "Hoàng Long", "Đại Phát", "Tân Phú", "Sao Việt", "Kim Ngân", "Phước Lộc",
                  "Nam Á", "Đông Dương", "Hải Âu", "Trường Sơn", "Bảo Minh", "Thiên Phúc",
                  "Quang Minh", "Hòa Bình", "Ánh Dương", "Lạc Hồng", "Bình An", "Gia Huy")
EMAIL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com.vn", "outlook.com",
                 "icloud.com", "hotmail.com")


def ascii_slug(text: str, sep: str = ".") -> str:
    """'Nguyễn Văn Đạt' -> 'nguyen.van.dat'."""
    text = text.replace("Đ", "D").replace("đ", "d")
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return sep.join(part for part in plain.lower().split() if part.isalnum())


def company_domain(name: str) -> str:
    """'Công ty TNHH Xây dựng Lạc Hồng' -> 'xaydunglachong.vn' (legal form left out)."""
    for form in sorted(_COMPANY_FORMS, key=len, reverse=True):
        if name.startswith(form):
            name = name[len(form):]
            break
    return (ascii_slug(name, sep="")[:40] or "congty") + ".vn"


@dataclass(frozen=True)
class Pools:
    families: tuple[str, ...]
    family_weights: tuple[float, ...]
    middle_male: tuple[str, ...]
    middle_female: tuple[str, ...]
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    streets: tuple[str, ...]
    companies: tuple[str, ...]

    @classmethod
    def build(cls, seed: int, companies: int = 400) -> Pools:
        fake = Faker("vi_VN")
        fake.seed_instance(seed)
        families = dict(_FAMILY_WEIGHTS)
        for _ in range(200):  # Faker's own family names, with a small weight if new
            families.setdefault(fake.last_name(), 0.5)
        given_male = set(_GIVEN_MALE)
        given_female = set(_GIVEN_FEMALE)
        for _ in range(300):
            given_male.add(fake.first_name_male())
            given_female.add(fake.first_name_female())
        streets = sorted({fake.street_name() for _ in range(600)})
        rng = random.Random(seed)
        company_set: set[str] = set()
        while len(company_set) < companies:
            company_set.add(f"{rng.choice(_COMPANY_FORMS)} {rng.choice(_COMPANY_TRADES)} "
                            f"{rng.choice(_COMPANY_NAMES)}")
        fams = sorted(families)
        return cls(
            families=tuple(fams),
            family_weights=tuple(families[f] for f in fams),
            middle_male=_MIDDLE_MALE,
            middle_female=_MIDDLE_FEMALE,
            given_male=tuple(sorted(given_male)),
            given_female=tuple(sorted(given_female)),
            streets=tuple(streets),
            companies=tuple(sorted(company_set)),
        )

    def person_names(self, rng: random.Random, n: int, female: bool) -> list[str]:
        """``n`` full names in Vietnamese order, drawn from the pools."""
        families = rng.choices(self.families, self.family_weights, k=n)
        middles = self.middle_female if female else self.middle_male
        givens = self.given_female if female else self.given_male
        return [f"{fam} {rng.choice(middles)} {rng.choice(givens)}" for fam in families]

    def person_name(self, rng: random.Random, female: bool) -> str:
        return self.person_names(rng, 1, female)[0]
