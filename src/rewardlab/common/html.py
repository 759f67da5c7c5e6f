"""Self-contained HTML pages: one page template, tables and embedded PNG figures."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from rewardlab.common.io import write_atomic

STYLE = """body{font-family:sans-serif;max-width:%dpx;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}
pre{background:#f6f6f6;padding:1em;font-size:12px}img{max-width:100%%}"""


def img(path: Path) -> str:
    """A PNG embedded in the page (the page needs no other file)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def table(df: pd.DataFrame) -> str:
    """A table with three significant digits."""
    return df.to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0)


def write_page(path: Path, title: str, body: str, width: int = 1100) -> None:
    """Write a whole page: `title` (escaped) as title and heading, then `body` (HTML)."""
    t = html.escape(title)
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{t}</title>'
        f"<style>{STYLE % width}</style></head><body>\n<h1>{t}</h1>\n{body}</body></html>"
    )
    write_atomic(path, page)
