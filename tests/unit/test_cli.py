"""Commands an operator meets on the first day: ``digest --version`` and ``digest specialties list``."""

from __future__ import annotations

from importlib.metadata import version

from digest.db import session_scope
from digest.wiring import Services
from tests.factories import add_subscriber, add_summaries, summary_record


def test_version_prints_the_installed_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"digest {version('digest')}"


def test_specialties_list_names_every_slug_with_its_readers(cli, services: Services) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology", "oncology"]))
        add_subscriber(s, "a@example.org", ["cardiology"])
        add_subscriber(s, "b@example.org", ["cardiology", "hematology"])
    result = cli("specialties", "list")
    assert result.exit_code == 0
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]]
        for line in result.stdout.splitlines()
        if line.count("│") >= 5
    }
    assert rows["cardiology"] == ["Cardiology", "2", "1"]
    assert rows["hematology"] == ["Hematology", "1", "0"]
    assert rows["oncology"] == ["Oncology", "0", "1"]
    assert "25 specialties" in result.stdout
