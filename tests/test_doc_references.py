"""Every documentation page the package's docstrings and comments cite (``docs/<page>.md``, or a bare
``<page>.md``) is a file of the repository: no reference dangles."""

import re
from pathlib import Path

import spatiotemporal

PACKAGE = Path(spatiotemporal.__file__).parent
REPO = PACKAGE.parent
CITED = re.compile(r"(?<![\w/.-])((?:docs/)?[\w-]+\.md)\b")


def test_cited_pages_exist():
    cited = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for page in CITED.findall(path.read_text()):
            cited.setdefault(page, []).append(str(path.relative_to(REPO)))
    assert "docs/mixers.md" in cited  # the FLOP formulas the mixers' docstrings cite
    missing = {page: files for page, files in cited.items()
               if not (REPO / page).is_file() and not (REPO / "docs" / page).is_file()}
    assert not missing, missing
