"""The camera catalogue synthetic EXIF draws from: real bodies and lenses, and the settings they offer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction


@dataclass(frozen=True)
class Lens:
    make: str
    model: str
    focal: tuple[float, float]
    # Widest aperture at the short and the long end; the narrowest it stops down to.
    aperture: tuple[float, float]
    smallest: float

    def f_numbers(self, focal: float) -> list[float]:
        """The f-numbers this lens offers at ``focal``: its widest there, then the standard stops."""
        (short, long), (at_short, at_long) = self.focal, self.aperture
        # A variable-aperture zoom closes down linearly enough over its range for a plausible pairing.
        zoomed = (focal - short) / (long - short) if long > short else 0.0
        widest = round(at_short + (at_long - at_short) * zoomed, 2)
        return [widest, *(stop for stop in F_STOPS if widest < stop <= self.smallest)]


@dataclass(frozen=True)
class Camera:
    make: str
    model: str
    software: str
    released: date
    iso: tuple[int, int]
    lenses: tuple[Lens, ...]


def _phone_lens(make: str, model: str, focal: float, aperture: float) -> Lens:
    return Lens(make, model, (focal, focal), (aperture, aperture), aperture)


# Real bodies with lenses sold for them, as their firmware writes Make, Model and LensModel.
CAMERAS = (
    Camera("Canon", "Canon EOS 5D Mark IV", "Firmware Version 1.2.0", date(2016, 9, 8), (100, 12800), (
        Lens("Canon", "EF24-105mm f/4L IS II USM", (24, 105), (4.0, 4.0), 22),
        Lens("Canon", "EF50mm f/1.8 STM", (50, 50), (1.8, 1.8), 22),
        Lens("Canon", "EF70-200mm f/2.8L IS III USM", (70, 200), (2.8, 2.8), 32),
    )),
    Camera("Canon", "Canon EOS 80D", "Firmware Version 1.0.2", date(2016, 3, 18), (100, 6400), (
        Lens("Canon", "EF-S18-135mm f/3.5-5.6 IS USM", (18, 135), (3.5, 5.6), 22),
        Lens("Canon", "EF-S24mm f/2.8 STM", (24, 24), (2.8, 2.8), 22),
    )),
    Camera("NIKON CORPORATION", "NIKON D750", "Ver.1.10", date(2014, 9, 23), (100, 12800), (
        Lens("Nikon", "AF-S NIKKOR 24-120mm f/4G ED VR", (24, 120), (4.0, 4.0), 22),
        Lens("Nikon", "AF-S NIKKOR 50mm f/1.8G", (50, 50), (1.8, 1.8), 16),
    )),
    Camera("NIKON CORPORATION", "NIKON Z 6", "Ver.03.00", date(2018, 11, 23), (100, 25600), (
        Lens("Nikon", "NIKKOR Z 24-70mm f/4 S", (24, 70), (4.0, 4.0), 22),
        Lens("Nikon", "NIKKOR Z 50mm f/1.8 S", (50, 50), (1.8, 1.8), 16),
    )),
    Camera("SONY", "ILCE-7M3", "ILCE-7M3 v3.01", date(2018, 4, 10), (100, 25600), (
        Lens("Sony", "FE 28-70mm F3.5-5.6 OSS", (28, 70), (3.5, 5.6), 22),
        Lens("Sony", "FE 85mm F1.8", (85, 85), (1.8, 1.8), 22),
    )),
    Camera("FUJIFILM", "X-T3", "Digital Camera X-T3 Ver3.00", date(2018, 9, 20), (160, 12800), (
        Lens("FUJIFILM", "XF18-55mmF2.8-4 R LM OIS", (18, 55), (2.8, 4.0), 22),
        Lens("FUJIFILM", "XF35mmF2 R WR", (35, 35), (2.0, 2.0), 16),
    )),
    Camera("OLYMPUS CORPORATION", "E-M10MarkIII", "Version 1.2", date(2017, 9, 21), (200, 6400), (
        Lens("OLYMPUS CORPORATION", "OLYMPUS M.14-42mm F3.5-5.6 EZ", (14, 42), (3.5, 5.6), 22),
    )),
    Camera("Panasonic", "DC-G9", "Ver.1.0", date(2018, 1, 25), (200, 6400), (
        Lens("Panasonic", "LUMIX G VARIO 12-60/F3.5-5.6", (12, 60), (3.5, 5.6), 22),
    )),
    Camera("Apple", "iPhone 12", "16.1.1", date(2020, 10, 23), (32, 2000), (
        _phone_lens("Apple", "iPhone 12 back dual wide camera 4.2mm f/1.6", 4.2, 1.6),
        _phone_lens("Apple", "iPhone 12 back dual wide camera 1.55mm f/2.4", 1.55, 2.4),
    )),
    Camera("Google", "Pixel 7", "HDR+ 1.0.540104767zd", date(2022, 10, 13), (50, 3200), (
        _phone_lens("Google", "Pixel 7 back camera 6.81mm f/1.85", 6.81, 1.85),
    )),
)  # fmt: skip
# Synthetic dates never come from the clock, so a seed always gives the same bytes.
LATEST_DATE = date(2025, 6, 30)
EXPOSURES = tuple(Fraction(1, d) for d in (4000, 3200, 2500, 2000, 1600, 1250, 1000, 800, 640, 500, 400,
                                           320, 250, 200, 160, 125, 100, 80, 60, 50, 40, 30, 25, 20, 15))
F_STOPS = (1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 2.8, 3.2, 3.5, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0, 10.0,
           11.0, 13.0, 14.0, 16.0, 18.0, 20.0, 22.0, 25.0, 29.0, 32.0)
ISOS = (32, 40, 50, 64, 80, 100, 125, 160, 200, 250, 320, 400, 500, 640, 800, 1000, 1250, 1600, 2000,
        2500, 3200, 4000, 5000, 6400, 8000, 10000, 12800, 16000, 20000, 25600)
