"""The seeded list of clinical specialties (slug, display name). Specialties are data, not code.

The shipped names are in English and in the catalogues: a reader sees them in their locale
(``specialty_name``) wherever they are shown (emails' subjects and headings, the pages); a specialty
an operator added, or renamed, shows as stored.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.config import DEFAULT_LOCALE
from digest.errors import Invalid
from digest.i18n import N_, translations
from digest.ingest.models import Specialty

SPECIALTIES: tuple[tuple[str, str], ...] = (
    ("allergy-immunology", N_("Allergy & Immunology")),
    ("anesthesiology", N_("Anesthesiology")),
    ("cardiology", N_("Cardiology")),
    ("critical-care", N_("Critical Care")),
    ("dermatology", N_("Dermatology")),
    ("emergency-medicine", N_("Emergency Medicine")),
    ("endocrinology", N_("Endocrinology")),
    ("gastroenterology", N_("Gastroenterology")),
    ("geriatrics", N_("Geriatrics")),
    ("hematology", N_("Hematology")),
    ("infectious-disease", N_("Infectious Disease")),
    ("nephrology", N_("Nephrology")),
    ("neurology", N_("Neurology")),
    ("obstetrics-gynecology", N_("Obstetrics & Gynecology")),
    ("oncology", N_("Oncology")),
    ("ophthalmology", N_("Ophthalmology")),
    ("orthopedics", N_("Orthopedics")),
    ("pediatrics", N_("Pediatrics")),
    ("primary-care", N_("Primary Care")),
    ("psychiatry", N_("Psychiatry")),
    ("pulmonology", N_("Pulmonology")),
    ("radiology", N_("Radiology")),
    ("rheumatology", N_("Rheumatology")),
    ("surgery", N_("Surgery")),
    ("urology", N_("Urology")),
)

SHIPPED_NAMES = frozenset(name for _, name in SPECIALTIES)


def specialty_name(name: str, locale: str = DEFAULT_LOCALE) -> str:
    """A specialty's display name in ``locale`` ("Cardiology" -> "Cardiología"), if it is one of the
    shipped names; any other name as stored."""
    return translations(locale).gettext(name) if name in SHIPPED_NAMES and locale != DEFAULT_LOCALE else name


def check_slugs(values: list[str], known: set[str] | None) -> list[str]:
    """Normalise specialty slugs (trimmed, lower-case, de-duplicated) and reject unknown ones.

    ``known`` is the seeded list (from a validation context); None skips the membership check.
    """
    slugs = list(dict.fromkeys(s.strip().lower() for s in values if s.strip()))
    if not slugs:
        raise Invalid(N_("choose at least one specialty"))
    unknown = [s for s in slugs if known is not None and s not in known]
    if unknown:
        raise Invalid(N_("unknown specialty %(slugs)s"), slugs=", ".join(map(repr, unknown)))
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
