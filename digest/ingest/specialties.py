"""The seeded list of clinical specialties (slug, display name). Specialties are data, not code."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.ingest.models import Specialty

SPECIALTIES: tuple[tuple[str, str], ...] = (
    ("allergy-immunology", "Allergy & Immunology"),
    ("anesthesiology", "Anesthesiology"),
    ("cardiology", "Cardiology"),
    ("critical-care", "Critical Care"),
    ("dermatology", "Dermatology"),
    ("emergency-medicine", "Emergency Medicine"),
    ("endocrinology", "Endocrinology"),
    ("gastroenterology", "Gastroenterology"),
    ("geriatrics", "Geriatrics"),
    ("hematology", "Hematology"),
    ("infectious-disease", "Infectious Disease"),
    ("nephrology", "Nephrology"),
    ("neurology", "Neurology"),
    ("obstetrics-gynecology", "Obstetrics & Gynecology"),
    ("oncology", "Oncology"),
    ("ophthalmology", "Ophthalmology"),
    ("orthopedics", "Orthopedics"),
    ("pediatrics", "Pediatrics"),
    ("primary-care", "Primary Care"),
    ("psychiatry", "Psychiatry"),
    ("pulmonology", "Pulmonology"),
    ("radiology", "Radiology"),
    ("rheumatology", "Rheumatology"),
    ("surgery", "Surgery"),
    ("urology", "Urology"),
)


def check_slugs(values: list[str], known: set[str] | None) -> list[str]:
    """Normalise specialty slugs (trimmed, lower-case, de-duplicated) and reject unknown ones.

    ``known`` is the seeded list (from a validation context); None skips the membership check.
    """
    slugs = list(dict.fromkeys(s.strip().lower() for s in values if s.strip()))
    if not slugs:
        raise ValueError("choose at least one specialty")
    unknown = [s for s in slugs if known is not None and s not in known]
    if unknown:
        raise ValueError(f"unknown specialty {', '.join(map(repr, unknown))}")
    return slugs


def seed_specialties(session: Session) -> int:
    """Insert the specialties that are missing; return how many were added. Existing names are kept."""
    known = set(session.scalars(select(Specialty.slug)))
    missing = [Specialty(slug=slug, name=name) for slug, name in SPECIALTIES if slug not in known]
    session.add_all(missing)
    session.flush()
    return len(missing)


def specialty_map(session: Session) -> dict[str, Specialty]:
    """All specialties by slug."""
    return {s.slug: s for s in session.scalars(select(Specialty))}
