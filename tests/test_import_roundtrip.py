"""Whatever text a shop's CSV holds comes back as written (trimmed), however it is quoted."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from conftest import BASIC_CONFIG
from regard.store import open_store
from regard.store.importer import import_contacts
from regard.workspace import load_config

TEXT = st.text(alphabet=st.sampled_from(list("aäöüßÄ é'\"-,;|\n\r\tZ0 ")), min_size=0, max_size=12)


@given(
    st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=8),
    st.sampled_from([",", ";"]),
    st.booleans(),
)
def test_csv_text_fields_survive_any_quoting(
    rows: list[tuple[str, str, str]], delimiter: str, bom: bool
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["id", "first_name", "city", "note"])
    for n, (first, city, note) in enumerate(rows):
        writer.writerow([f"c{n}", first, city, note])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "regard.toml").write_text(BASIC_CONFIG, encoding="utf-8")
        path = root / "contacts.csv"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
        config = load_config(root / "regard.toml")
        with open_store(config.store_target) as store:
            result = import_contacts(store, config, path)
            assert result.inserted == len(rows)
            for n, (first, city, note) in enumerate(rows):
                contact = store.contacts.get(f"c{n}")
                assert contact is not None
                assert contact["first_name"] == (first.strip() or None)
                assert contact["city"] == (city.strip() or None)
                assert contact.get("note") == (note.strip() or None)
