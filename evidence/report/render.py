"""The French PDF report of an evidence bundle (`report.pdf`), for a judge and a lawyer.

It draws only what `ReportData` holds: it never reads the ledger, never states a fact that is
not in the signed data, and shows every time in Paris time with its zone named.

Why it is long: the French PDF is drawn section by section with reportlab; each section is a
function, and they share the page layout and styles kept here.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import structlog
from reportlab.graphics.shapes import Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.lib.utils import TimeStamp
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import registerFontFamily
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from config.french import (
    format_date_fr,
    format_datetime_fr,
    format_duration_fr,
    percent_fr,
    to_paris,
)
from evidence.report.data import (
    ClockJumpFact,
    OutageRow,
    ReportData,
    Screenshot,
    SeenValue,
    TargetReport,
    jumps_during,
)

__all__ = [
    "FONT_DIR",
    "MAX_OUTAGE_ROWS",
    "document_styles",
    "format_date_fr",
    "format_datetime_fr",
    "format_duration_fr",
    "page_canvas",
    "render_report",
]

log = structlog.get_logger("vigie.report")

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
MAX_OUTAGE_ROWS = 1000  # beyond this the table says where the rest is (outages.csv)
MAX_CHART_TARGETS = 50
_NBSP = "\u00a0"
_NNBSP = "\u202f"
_MINUS = "\u2212"
_INK = colors.HexColor("#1f2933")
_MUTED = colors.HexColor("#52606d")
_RULE = colors.HexColor("#cbd2d9")
_HEAD_BG = colors.HexColor("#e4e7eb")
_BLUE = colors.HexColor("#1f5f99")
_GREEN = colors.HexColor("#2f855a")
_ORANGE = colors.HexColor("#c05621")
_RED = colors.HexColor("#c53030")
_GREY = colors.HexColor("#9aa5b1")
_CHART_HEIGHT = 120.0  # points, of each daily chart

# --- French formatting ------------------------------------------------------------------------


def _short_datetime(moment: dt.datetime) -> str:
    """``23/11/2026 14:27:18`` in Paris time (tables; the column header names the zone)."""
    return to_paris(moment).strftime("%d/%m/%Y %H:%M:%S")


def _duration_fr(seconds: float) -> str:
    """``2 h 05 min``, ``3 j 4 h 00 min``, ``45 s``: past a day, the minutes are kept."""
    return format_duration_fr(seconds, day_minutes=True)


def _percent(ratio: float | None, digits: int = 3) -> str:
    return percent_fr(ratio, digits)  # rounded down: never round downtime away


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{round(value * 1000)}{_NNBSP}ms"
    return f"{value:.2f}".replace(".", ",") + f"{_NNBSP}s"


def _number(value: int) -> str:
    return f"{value:,}".replace(",", _NNBSP)


def _every(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "chaque minute" if minutes == 1 else f"toutes les {minutes} minutes"
    if seconds == 1:
        return "chaque seconde"
    return f"toutes les {_g(seconds)} secondes"


def _g(value: float) -> str:
    """A number as French writes it: ``0,5``, ``30``."""
    return f"{value:g}".replace(".", ",")


# --- fonts and styles -------------------------------------------------------------------------


class _Fonts:
    regular = "Helvetica"
    bold = "Helvetica-Bold"
    mono = "Courier"
    cell = "Helvetica"
    cell_bold = "Helvetica-Bold"
    warn = "(!)"  # the warning sign when the font has it


def _register_fonts() -> _Fonts:
    """DejaVu (full French accents, embedded) when installed, else Helvetica with a warning."""
    fonts = _Fonts()
    files = {
        "VigieSans": FONT_DIR / "DejaVuSans.ttf",
        "VigieSans-Bold": FONT_DIR / "DejaVuSans-Bold.ttf",
        "VigieSans-Oblique": FONT_DIR / "DejaVuSans-Oblique.ttf",
        "VigieSans-BoldOblique": FONT_DIR / "DejaVuSans-BoldOblique.ttf",
        "VigieCond": FONT_DIR / "DejaVuSansCondensed.ttf",
        "VigieCond-Bold": FONT_DIR / "DejaVuSansCondensed-Bold.ttf",
        "VigieCond-Oblique": FONT_DIR / "DejaVuSansCondensed-Oblique.ttf",
        "VigieCond-BoldOblique": FONT_DIR / "DejaVuSansCondensed-BoldOblique.ttf",
        "VigieMono": FONT_DIR / "DejaVuSansMono.ttf",
    }
    if not all(path.is_file() for path in files.values()):
        log.warning(
            "report_font_missing",
            directory=str(FONT_DIR),
            fallback="Helvetica",
            hint="install Debian's fonts-dejavu-core for embedded fonts with every accent",
        )
        return fonts
    registered = set(pdfmetrics.getRegisteredFontNames())
    for name, path in files.items():
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    for family in ("VigieSans", "VigieCond"):  # so that <b> and <i> pick the right faces
        registerFontFamily(
            family,
            normal=family,
            bold=f"{family}-Bold",
            italic=f"{family}-Oblique",
            boldItalic=f"{family}-BoldOblique",
        )
    fonts.regular, fonts.bold, fonts.mono = "VigieSans", "VigieSans-Bold", "VigieMono"
    fonts.cell, fonts.cell_bold = "VigieCond", "VigieCond-Bold"
    fonts.warn = "\u26a0"
    return fonts


class _Styles:
    def __init__(self, fonts: _Fonts) -> None:
        self.fonts = fonts
        base = ParagraphStyle(
            "body",
            fontName=fonts.regular,
            bulletFontName=fonts.regular,
            fontSize=9.5,
            leading=13,
            textColor=_INK,
        )
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=8, leading=10.5)
        self.muted = ParagraphStyle("muted", parent=self.small, textColor=_MUTED)
        self.cell = ParagraphStyle(
            "cell", parent=base, fontName=fonts.cell, fontSize=7.5, leading=9.5
        )
        self.cell_bold = ParagraphStyle("cellb", parent=self.cell, fontName=fonts.cell_bold)
        self.mono = ParagraphStyle("mono", parent=self.cell, fontName=fonts.mono, fontSize=7)
        self.h1 = ParagraphStyle(
            "h1",
            parent=base,
            fontName=fonts.bold,
            fontSize=15,
            leading=19,
            spaceBefore=4,
            spaceAfter=8,
            textColor=_BLUE,
        )
        self.h2 = ParagraphStyle(
            "h2",
            parent=base,
            fontName=fonts.bold,
            fontSize=11,
            leading=14,
            spaceBefore=8,
            spaceAfter=4,
        )
        self.title = ParagraphStyle(
            "title",
            parent=base,
            fontName=fonts.bold,
            fontSize=22,
            leading=28,
            alignment=TA_CENTER,
            textColor=_BLUE,
        )
        self.subtitle = ParagraphStyle(
            "subtitle",
            parent=base,
            fontSize=12,
            leading=16,
            alignment=TA_CENTER,
            textColor=_MUTED,
        )
        self.bullet = ParagraphStyle(
            "bullet", parent=base, leftIndent=12, bulletIndent=2, spaceAfter=2
        )
        self.step = ParagraphStyle("step", parent=base, leftIndent=16, bulletIndent=0, spaceAfter=3)


def document_styles() -> _Styles:
    """The report's fonts (registered) and paragraph styles, for other Vigie documents."""
    return _Styles(_register_fonts())


def french_document(
    buffer: io.BytesIO,
    *,
    title: str,
    author: str,
    top_margin: float,
    pagesize: tuple[float, float] = A4,
    margin: float = 2 * cm,
    subject: str | None = None,
) -> SimpleDocTemplate:
    """The page set-up every Vigie PDF shares (report, attestation, pièces): French, Vigie as
    creator, `margin` left and right, 2 cm at the bottom for the footer."""
    return SimpleDocTemplate(
        buffer,
        pagesize=pagesize,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=top_margin,
        bottomMargin=2 * cm,
        title=title,
        author=author,
        subject=subject,
        creator="Vigie",
        lang="fr-FR",
    )


def page_canvas(styles: _Styles, footer: str, created: dt.datetime) -> type[Canvas]:
    """The report's page furniture (footer, ``Page n sur N``, creation date) for a document."""
    return _numbered_canvas(styles.fonts, footer, created)


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(text, style)


def _e(text: object) -> str:
    return escape(str(text))


# --- page furniture ---------------------------------------------------------------------------


def _pdf_time_stamp(moment: dt.datetime) -> TimeStamp:
    """reportlab's document time stamp set to `moment` (UTC): the PDF's creation date is the
    report's, in invariant mode too (which would write 1 January 2000), and the same export
    still gives the same bytes."""
    stamp = TimeStamp(invariant=1)
    stamp.t = moment.timestamp()
    stamp.lt = time.gmtime(int(stamp.t))
    stamp.YMDhms = tuple(stamp.lt)[:6]
    stamp.dhh = stamp.dmm = 0
    stamp.tzname = "UTC"
    return stamp


def _numbered_canvas(
    fonts: _Fonts, footer: str, created: dt.datetime | None = None
) -> type[Canvas]:
    """A canvas that writes ``Page n sur N`` once the page count is known; `created` is the
    date written in the PDF's metadata."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("initialFontName", fonts.regular)  # no stray Helvetica
            super().__init__(*args, **kwargs)
            self._saved: list[dict[str, Any]] = []
            if created is not None:
                self._doc._timeStamp = _pdf_time_stamp(created)  # type: ignore[attr-defined]

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._saved.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]

        def save(self) -> None:
            total = len(self._saved)
            for state in self._saved:
                self.__dict__.update(state)
                self._furniture(total)
                super().showPage()
            super().save()

        def _furniture(self, total: int) -> None:
            width = float(self._pagesize[0])  # type: ignore[attr-defined]
            self.saveState()
            self.setStrokeColor(_RULE)
            self.setLineWidth(0.5)
            self.line(2 * cm, 1.45 * cm, width - 2 * cm, 1.45 * cm)
            self.setFont(fonts.regular, 7.5)
            self.setFillColor(_MUTED)
            self.drawString(2 * cm, 1.0 * cm, footer)
            self.drawRightString(
                width - 2 * cm, 1.0 * cm, f"Page {self.getPageNumber()} sur {total}"
            )
            self.restoreState()

    return NumberedCanvas


# --- charts -----------------------------------------------------------------------------------


def _rect(x: float, y: float, w: float, h: float, *, fill: Any = None, stroke: Any = None) -> Rect:
    """A rectangle (attributes set after construction: the stubs mistype Rect's keywords)."""
    shape = Rect(x, y, w, h)
    shape.fillColor = fill
    shape.strokeColor = stroke
    shape.strokeWidth = 0.5
    return shape


def _axis_dates(
    drawing: Drawing, days: Sequence[dt.date], x0: float, width: float, *, y: float, font: str
) -> None:
    count = len(days)
    if not count:
        return
    step = max(1, math.ceil(count / 8))
    slot = width / count
    for index in range(0, count, step):
        day = days[index]
        x = x0 + slot * (index + 0.5)
        drawing.add(Line(x, y + 3, x, y + 6, strokeColor=_GREY, strokeWidth=0.5))
        label = f"{day.day:02d}/{day.month:02d}" if count <= 120 else f"{day.month:02d}/{day.year}"
        drawing.add(
            String(
                x, y - 5, label, fontName=font, fontSize=6.5, fillColor=_MUTED, textAnchor="middle"
            )
        )


def _jump_positions(
    days: Sequence[dt.date], jumps: Sequence[ClockJumpFact]
) -> list[tuple[int, float, int]]:
    """(day index, fraction of the Paris day, jump number) of each jump within `days`."""
    index_of = {day: index for index, day in enumerate(days)}
    found = []
    for number, jump in enumerate(jumps, start=1):
        local = to_paris(jump.detected_at)
        index = index_of.get(local.date())
        if index is not None:
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            fraction = (local - midnight).total_seconds() / 86400
            found.append((index, min(max(fraction, 0.0), 1.0), number))
    return found


def _chart_frame(
    width: float, fonts: _Fonts, ticks: Sequence[tuple[float, str]]
) -> tuple[Drawing, float, float, float, float]:
    """A chart's drawing with its plot frame and grid lines, each labelled on the left.

    `ticks`: (fraction of the plot height, label) of each grid line. Returns the drawing and
    the plot's left, bottom, width and height.
    """
    drawing = Drawing(width, _CHART_HEIGHT)
    x0, y0, plot_w, plot_h = 34.0, 18.0, width - 40.0, _CHART_HEIGHT - 30.0
    drawing.add(_rect(x0, y0, plot_w, plot_h, stroke=_RULE))
    for fraction, label in ticks:
        y = y0 + plot_h * fraction
        drawing.add(Line(x0, y, x0 + plot_w, y, strokeColor=_RULE, strokeWidth=0.3))
        drawing.add(
            String(
                x0 - 3,
                y - 2.5,
                label,
                fontName=fonts.regular,
                fontSize=6.5,
                fillColor=_MUTED,
                textAnchor="end",
            )
        )
    return drawing, x0, y0, plot_w, plot_h


def _chart_title(drawing: Drawing, x0: float, title: str, fonts: _Fonts) -> None:
    """The chart's title, at the top left."""
    drawing.add(
        String(x0, _CHART_HEIGHT - 8, title, fontName=fonts.bold, fontSize=8, fillColor=_INK)
    )


def _legend_label(drawing: Drawing, x: float, label: str, fonts: _Fonts) -> None:
    """The text of one legend entry, at the top of the chart."""
    drawing.add(
        String(x, _CHART_HEIGHT - 8, label, fontName=fonts.regular, fontSize=6.5, fillColor=_MUTED)
    )


def _availability_chart(
    target: TargetReport,
    fonts: _Fonts,
    width: float,
    jumps: Sequence[ClockJumpFact] = (),
) -> Drawing:
    """Bars of daily availability (0 to 100 %); grey marks for days not monitored; red
    dashed lines where the wall clock jumped."""
    ticks = [(pct / 100, f"{pct}{_NNBSP}%") for pct in (0, 25, 50, 75, 100)]
    drawing, x0, y0, plot_w, plot_h = _chart_frame(width, fonts, ticks)
    days = target.days
    if days:
        slot = plot_w / len(days)
        bar = min(max(0.6, slot * 0.8), 18.0)
        for index, point in enumerate(days):
            x = x0 + slot * index + (slot - bar) / 2
            if point.availability is None:
                drawing.add(_rect(x, y0, bar, 3, fill=_GREY))
                continue
            ratio = point.availability
            color = _GREEN if ratio >= 0.999 else _ORANGE if ratio >= 0.99 else _RED
            drawing.add(_rect(x, y0, bar, max(0.5, plot_h * ratio), fill=color))
        for index, fraction, number in _jump_positions([d.day for d in days], jumps):
            x = x0 + slot * (index + fraction)
            drawing.add(
                Line(
                    x,
                    y0,
                    x,
                    y0 + plot_h,
                    strokeColor=_RED,
                    strokeWidth=1,
                    strokeDashArray=[2, 1.5],
                )
            )
            drawing.add(
                String(
                    x + 1.5,
                    y0 + plot_h - 7,
                    str(number),
                    fontName=fonts.bold,
                    fontSize=6,
                    fillColor=_RED,
                )
            )
        _axis_dates(drawing, [d.day for d in days], x0, plot_w, y=y0 - 8, font=fonts.regular)
    _chart_title(drawing, x0, "Disponibilité par jour (heure de Paris)", fonts)
    legend: list[tuple[Any, str]] = [
        (_GREEN, "≥ 99,9 %"),
        (_ORANGE, "≥ 99 %"),
        (_RED, "< 99 %"),
        (_GREY, "non surveillé"),
    ]
    if days and _jump_positions([d.day for d in days], jumps):
        legend.append((None, "saut d'horloge"))
    widths = [10 + pdfmetrics.stringWidth(label, fonts.regular, 6.5) + 8 for _, label in legend]
    lx = x0 + plot_w - sum(widths) + 8  # right-aligned, clear of the title on the left
    for (color, label), step in zip(legend, widths, strict=True):
        if color is None:  # the clock-jump mark: a red dashed line, as on the bars
            drawing.add(
                Line(
                    lx + 3,
                    _CHART_HEIGHT - 9,
                    lx + 3,
                    _CHART_HEIGHT - 2,
                    strokeColor=_RED,
                    strokeWidth=1,
                    strokeDashArray=[2, 1.5],
                )
            )
        else:
            drawing.add(_rect(lx, _CHART_HEIGHT - 9, 7, 7, fill=color))
        _legend_label(drawing, lx + 10, label, fonts)
        lx += step
    return drawing


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10.0 ** math.floor(math.log10(value))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= factor * exponent:
            return factor * exponent
    return 10.0 * exponent


def _response_chart(target: TargetReport, fonts: _Fonts, width: float) -> Drawing:
    """Lines of the daily median and 95th percentile check duration."""
    days = target.days
    peak = max((d.p95_s or d.p50_s or 0.0 for d in days), default=0.0)
    top = _nice_ceiling(peak * 1.05)
    ticks = [
        (frac, _seconds(top * frac).replace(_NNBSP, " ")) for frac in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    drawing, x0, y0, plot_w, plot_h = _chart_frame(width, fonts, ticks)
    if days:
        slot = plot_w / len(days)
        for attr, color, dash in (("p95_s", _ORANGE, [2, 1.5]), ("p50_s", _BLUE, None)):
            run: list[float] = []
            for index, point in enumerate(days):
                value = getattr(point, attr)
                if value is None:
                    _flush_line(drawing, run, color, dash)
                    run = []
                    continue
                run += [x0 + slot * (index + 0.5), y0 + plot_h * min(value / top, 1.0)]
            _flush_line(drawing, run, color, dash)
        _axis_dates(drawing, [d.day for d in days], x0, plot_w, y=y0 - 8, font=fonts.regular)
    _chart_title(drawing, x0, "Durée des vérifications par jour", fonts)
    lx = x0 + plot_w - 170
    for color, label in ((_BLUE, "médiane"), (_ORANGE, "95ᵉ centile")):
        drawing.add(
            Line(
                lx,
                _CHART_HEIGHT - 6,
                lx + 12,
                _CHART_HEIGHT - 6,
                strokeColor=color,
                strokeWidth=1.5,
            )
        )
        _legend_label(drawing, lx + 15, label, fonts)
        lx += 75
    return drawing


def _flush_line(drawing: Drawing, points: list[float], color: Any, dash: Any) -> None:
    if len(points) == 2:
        drawing.add(_rect(points[0] - 1, points[1] - 1, 2, 2, fill=color))
    elif len(points) > 2:
        drawing.add(PolyLine(points, strokeColor=color, strokeWidth=1.2, strokeDashArray=dash))


# --- sections ---------------------------------------------------------------------------------


def _table(
    rows: list[list[Any]],
    widths: Sequence[float],
    *,
    header_rows: int = 1,
    zebra: bool = True,
) -> Table:
    table = Table(rows, colWidths=list(widths), repeatRows=header_rows)
    style: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, header_rows - 1), 0.6, _INK),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), _HEAD_BG),
        ("LINEBELOW", (0, header_rows), (-1, -1), 0.25, _RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    if zebra:
        shade = colors.HexColor("#f5f7fa")
        style += [
            ("BACKGROUND", (0, index), (-1, index), shade)
            for index in range(header_rows + 1, len(rows), 2)
        ]
    table.setStyle(TableStyle(style))
    return table


# A URL is broken only after '/', '?', '&', '#' or '=', or before a '%' escape: never inside a
# word (reportlab would cut "protocol/o|penid-connect" wherever the line ends).
_URL_BREAKS = re.compile(r"(?<=[/?&#=])|(?=%)")


def _url_html(url: str, style: ParagraphStyle, width: float) -> str:
    """`url` escaped, with a line break wherever it must wrap to fit `width` in `style`."""

    def fits(text: str) -> bool:
        return pdfmetrics.stringWidth(text, style.fontName, style.fontSize) <= width

    lines: list[str] = []
    line = ""
    for piece in (p for p in _URL_BREAKS.split(url) if p):
        if fits(line + piece):
            line += piece
            continue
        if line:
            lines.append(line)
        rest = piece
        while not fits(rest) and len(rest) > 1:  # a single piece too long: cut it at last
            cut = next(n for n in range(len(rest) - 1, 0, -1) if fits(rest[:n]))
            lines.append(rest[:cut])
            rest = rest[cut:]
        line = rest
    if line:
        lines.append(line)
    return "<br/>".join(_e(text) for text in lines)


def _facts(rows: Sequence[tuple[str, str]], s: _Styles, width: float) -> Table:
    """A two-column table of label / value paragraphs (values already escaped)."""
    data = [[_p(_e(label), s.cell_bold), _p(value, s.cell)] for label, value in rows]
    table = Table(data, colWidths=[width * 0.3, width * 0.7])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, _RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _period_text(data: ReportData, *, seconds: bool = True) -> str:
    return (
        f"du {format_datetime_fr(data.period_start, zone=False, seconds=seconds)} "
        f"au {format_datetime_fr(data.period_end, zone=False, seconds=seconds)} (heure de Paris)"
    )


def _corroboration_text(data: ReportData) -> str | None:
    """The corroboration result in one sentence (None without corroboration)."""
    corroboration = data.corroboration
    if corroboration is None:
        return None
    down = [o for o in data.outages if o.kind == "down"]
    seen = [o for o in down if o.seen_from >= corroboration.min_vantages]
    if corroboration.vantages:
        names = _e(", ".join(corroboration.vantages))
        return (
            "interruptions confirmées depuis au moins "
            f"{corroboration.min_vantages} points d'observation : {len(seen)} sur "
            f"{len(down)} (points comparés : {names})"
        )
    return (
        "interruptions confirmées depuis plusieurs points d'observation (jusqu'à "
        f"{corroboration.count}) : {len(seen)} sur {len(down)} ; leurs noms n'ont pas été transmis "
        "lors de l'export (voir la sortie de « vigie corroborate »)"
    )


def _clock_summary(data: ReportData, *, refer: bool = True) -> str:
    """The clock jumps in one phrase (`refer`: pointing to the section that lists them)."""
    if not data.clock_jumps_known:
        return (
            "non recherchés lors de cet export (les éventuelles entrées « clock_jump » "
            "figurent dans observations.jsonl)"
        )
    total = data.clock_jumps_total or len(data.clock_jumps)
    if not total:
        return "aucun saut de l'horloge du système détecté pendant la période"
    return (
        f"{_plural(total, 'saut')} de l'horloge du système "
        f"{'détectés' if total > 1 else 'détecté'} : "
        + "; ".join(
            f"{_e(_short_datetime(j.detected_at))} ({_e(_jump_short(j))})"
            for j in data.clock_jumps[:5]
        )
        + (" ; …" if total > 5 else "")
        + (" — voir « Environnement des observations »" if refer else " — liste ci-dessous")
    )


def _clock_warning(data: ReportData) -> list[tuple[str, str]]:
    """A cover row when observations were made on a clock not known to be synchronised."""
    unsynced = [v for v in data.environment.clock if "non synchronisée" in v.value]
    if not unsynced:
        return []
    count = sum(v.count for v in unsynced)
    return [
        (
            "Horloge",
            (
                f"<b>non synchronisée</b> lors de {_plural(count, 'observation')} : leurs heures "
                "peuvent s'écarter de l'heure légale (voir « Environnement des observations »)"
            ),
        )
    ]


def _title_page(data: ReportData, s: _Styles, width: float) -> list[Flowable]:
    story: list[Flowable] = [Spacer(1, 3 * cm)]
    story.append(_p(_e(data.title), s.title))
    story.append(Spacer(1, 0.4 * cm))
    story.append(
        _p("Rapport de constat établi par Vigie à partir de son registre signé", s.subtitle)
    )
    story.append(Spacer(1, 1.5 * cm))
    down_outages = [o for o in data.outages if o.kind == "down"]
    total = data.outages_total if data.outages_total is not None else len(data.outages)
    rows = [
        ("Période observée", _e(_period_text(data))),
        *(
            [
                (
                    "Période demandée",
                    _e(
                        f"du {format_datetime_fr(data.requested[0], zone=False)} au "
                        f"{format_datetime_fr(data.requested[1], zone=False)} ; Vigie n'a "
                        "enregistré d'observations qu'aux dates ci-dessus"
                    ),
                )
            ]
            if data.requested is not None
            else []
        ),
        (
            "Services observés",
            "<br/>".join(
                f"{_e(t.name)} :<br/>{_url_html(t.url, s.cell, width * 0.7 - 12)}"
                for t in data.targets
            )
            or "—",
        ),
        ("Point d'observation", _e(data.vantage)),
        (
            "Opérateur",
            _e(data.operator)
            if data.operator
            else "non renseigné (le champ <i>vantage.operator</i> de la configuration du point "
            "d'observation est vide)",
        ),
        *_clock_warning(data),
        (
            "Interruptions constatées",
            _outage_count(len(down_outages), total - len(down_outages)),
        ),
        ("Sauts d'horloge", _clock_summary(data)),
        ("Rapport établi le", _e(format_datetime_fr(data.generated_at))),
        ("Archive de preuves", _e(data.bundle_name)),
    ]
    corroborated = _corroboration_text(data)
    if corroborated is not None:
        rows.insert(3, ("Corroboration", corroborated))
    story.append(_facts(rows, s, width))
    story.append(Spacer(1, 1.2 * cm))
    story.append(
        _p(
            "Ce rapport résume les données de l'archive qui l'accompagne. Chaque observation y "
            "figure telle qu'elle a été enregistrée au moment de la mesure, dans un registre "
            "infalsifiable (arbre de Merkle signé, RFC 9162). En cas de divergence entre ce "
            "document et les données signées, ce sont les données signées qui font foi ; la "
            "section « Comment vérifier » explique comment s'en assurer sans faire confiance à "
            "Vigie.",
            s.muted,
        )
    )
    story.append(PageBreak())
    return story


def _summary(data: ReportData, s: _Styles, width: float) -> list[Flowable]:
    story: list[Flowable] = [_p("1. Disponibilité par service", s.h1)]
    story.append(
        _p(
            "La disponibilité est la part du temps surveillé pendant laquelle le service n'était "
            "pas en interruption confirmée. Le temps non surveillé (Vigie arrêté, connexion "
            "du point d'observation coupée, ou parcours à mettre à jour après un changement "
            "des pages du site) n'est compté ni comme disponible ni comme indisponible ; il est "
            "indiqué à part.",
            s.body,
        )
    )
    if data.single_outage:
        story.append(
            _p(
                "<b>Ce dossier ne porte que sur une interruption</b> : sa période va de la "
                "première vérification en échec à la dernière entrée du dossier. Les chiffres "
                "ci-dessous décrivent cette seule période et ne disent rien de la disponibilité "
                "du service le reste du temps ; un dossier de période (vigie export --from … "
                "--to …) la donne.",
                s.body,
            )
        )
    story.append(Spacer(1, 6))
    header = [
        "Service",
        "Disponibilité",
        "Indisponi-<br/>bilité",
        "dont maintenance annoncée",
        "Non surveillé",
        "Vérifications (échecs)",
        "Interrup-<br/>tions",
        "Durée médiane / 95ᵉ centile",
    ]
    rows: list[list[Any]] = [[_p(h, s.cell_bold) for h in header]]
    rows += [
        [
            _p(f"<b>{_e(t.name)}</b><br/><font size=6.5>{_e(t.id)}</font>", s.cell),
            _p(f"<b>{_percent(t.availability)}</b>", s.cell),
            _p(_duration_fr(t.down_s), s.cell),
            _p(_duration_fr(t.maintenance_down_s), s.cell),
            _p(_duration_fr(t.unmonitored_s), s.cell),
            _p(f"{_number(t.checks)} ({_number(t.failures)})", s.cell),
            _p(_number(t.outages), s.cell),
            _p(f"{_seconds(t.p50_s)} / {_seconds(t.p95_s)}", s.cell),
        ]
        for t in data.targets
    ]
    fractions = (0.2, 0.12, 0.12, 0.12, 0.1, 0.12, 0.09, 0.13)
    story.append(_table(rows, [width * f for f in fractions]))
    story += _unmonitored(data, s)
    return story


_MAX_UNMONITORED = 30  # dated spans listed per service; the others are counted


def _unmonitored(data: ReportData, s: _Styles) -> list[Flowable]:
    """The unmonitored time of each service, dated span by span (Paris time)."""
    listed = [t for t in data.targets if t.unmonitored]
    if not listed:
        return []
    story: list[Flowable] = [
        Spacer(1, 6),
        _p("Temps non surveillé, daté", s.h2),
        _p(
            "Chaque période pendant laquelle un service n'a pas été surveillé, avec sa cause "
            "(heure de Paris). Ces périodes ne comptent ni comme disponibles ni comme "
            "indisponibles.",
            s.body,
        ),
    ]
    for target in listed:
        lines = [
            f"du {_e(_short_datetime(a))} au {_e(_short_datetime(b))} "
            f"({_e(_duration_fr((b - a).total_seconds()))}) : {_e(why)}"
            for a, b, why in target.unmonitored[:_MAX_UNMONITORED]
        ]
        more = len(target.unmonitored) - _MAX_UNMONITORED
        if more > 0:
            lines.append(
                f"… et {_plural(more, 'autre période', 'autres périodes')} (entrées « gap » et "
                "« vantage » de observations.jsonl)"
            )
        story.append(_p(f"<b>{_e(target.name)}</b><br/>" + "<br/>".join(lines), s.small))
    return story


def _seen_from(row: OutageRow) -> str:
    """Who saw an outage, with corroboration: the vantages by name, else their number."""
    if row.vantages:
        count = len(row.vantages)
        return (
            f"{_e(', '.join(row.vantages))}<br/><font size=6.5>({_plural(count, 'point')})</font>"
        )
    if row.vantage_count:
        return (
            f"{_plural(row.vantage_count, 'point')}<br/>"
            "<font size=6.5>(noms non transmis à l'export)</font>"
        )
    return "—"


def _jump_short(jump: ClockJumpFact) -> str:
    """``+5 min``, ``-4,5 s`` (a true minus sign): the jump, signed (positive: forward)."""
    size = abs(jump.jump_s)
    text = (
        f"{size:.1f}".replace(".", ",").removesuffix(",0") + f"{_NBSP}s"
        if size < 60
        else _duration_fr(size)
    )
    return ("+" if jump.forward else _MINUS) + text


def _jump_size(jump: ClockJumpFact) -> str:
    """``+5 min (+300,000 s)``: the jump, signed, and exactly in seconds."""
    exact = f"{abs(jump.jump_s):.3f}".replace(".", ",")
    return f"{_jump_short(jump)} ({'+' if jump.forward else _MINUS}{exact}{_NBSP}s)"


def _jump_marks(row: OutageRow, data: ReportData, s: _Styles) -> str:
    """The clock jumps met by an outage, as a red note for its table row ("" if none)."""
    numbers = jumps_during(row.started_at, row.ended_at, data.clock_jumps)
    if not numbers:
        return ""
    listed = ", ".join(f"n° {i + 1} ({_e(_jump_short(data.clock_jumps[i]))})" for i in numbers)
    return f"<br/><font size=6.5 color='#c53030'>{s.fonts.warn} saut d'horloge {listed}</font>"


def _outage_cells(
    row: OutageRow, number: int, s: _Styles, corroborated: bool, marks: str = ""
) -> list[Any]:
    end = _short_datetime(row.ended_at) if row.ended_at else "en cours à la fin de la période"
    kind = "Interruption" if row.kind == "down" else "Lenteur"
    cells = [
        _p(str(number), s.cell),
        _p(f"{_e(row.target_id)}<br/><font size=6.5 color='#52606d'>{kind}</font>", s.cell),
        _p(_e(_short_datetime(row.started_at)), s.cell),
        _p(_e(end), s.cell),
        _p(_e(_duration_fr(row.duration_s)) + marks, s.cell),
        _p(
            _e(row.cause or "—")
            + (f"<br/><i>Vérification : {_e(row.review)}</i>" if row.review else ""),
            s.cell,
        ),
        _p(_e(row.maintenance or "non"), s.cell),
    ]
    if corroborated:
        cells.append(_p(_seen_from(row), s.cell))
    return cells


def _outages(data: ReportData, s: _Styles, width: float) -> list[Flowable]:
    story: list[Flowable] = [CondPageBreak(6 * cm), _p("2. Interruptions constatées", s.h1)]
    rows_in = list(data.outages)
    total = data.outages_total if data.outages_total is not None else len(rows_in)
    if not rows_in:
        story.append(
            _p("Aucune interruption ni lenteur confirmée pendant la période observée.", s.body)
        )
        return story
    story.append(
        _p(
            "Début : heure de la première vérification en échec ; fin : heure de la première "
            "vérification réussie ensuite. Les heures sont en heure de Paris (heure légale "
            "française). Une interruption qui recoupe une fenêtre de maintenance annoncée est "
            "signalée, jamais retirée.",
            s.body,
        )
    )
    story.append(Spacer(1, 6))
    corroborated = data.corroboration is not None
    header = ["N°", "Service", "Début (Paris)", "Fin (Paris)", "Durée", "Cause", "Maintenance"]
    fractions = [0.05, 0.17, 0.14, 0.14, 0.11, 0.25, 0.14]
    if corroborated:
        header.append("Constatée depuis")
        fractions = [0.05, 0.15, 0.13, 0.13, 0.1, 0.21, 0.12, 0.11]
    rows: list[list[Any]] = [[_p(h, s.cell_bold) for h in header]]
    shown = rows_in[:MAX_OUTAGE_ROWS]
    marked = 0
    for number, row in enumerate(shown, start=1):
        marks = _jump_marks(row, data, s)
        marked += bool(marks)
        rows.append(_outage_cells(row, number, s, corroborated, marks))
    story.append(_table(rows, [width * f for f in fractions]))
    if marked:
        story.append(Spacer(1, 4))
        story.append(
            _p(
                f"{s.fonts.warn} {_plural(marked, 'ligne marquée', 'lignes marquées')} "
                "« saut d'horloge » : l'horloge du "
                "système a sauté pendant l'interruption ou à ses bornes (liste des sauts dans la "
                "section « Environnement des observations »). Leurs heures de début et de fin, "
                "et donc leur durée, qui en est la différence, sont à corriger de l'ampleur du "
                "saut indiquée.",
                s.small,
            )
        )
    if total > len(shown):
        story.append(Spacer(1, 4))
        story.append(
            _p(
                f"Seules les {len(shown)} premières lignes sont reproduites ici ; les {total} "
                "événements figurent dans le fichier <i>outages.csv</i> de l'archive.",
                s.muted,
            )
        )
    return story


def _charts(data: ReportData, s: _Styles, width: float) -> list[Flowable]:
    story: list[Flowable] = [PageBreak(), _p("3. Évolution jour par jour", s.h1)]
    story.append(
        _p(
            "Pour chaque service : la disponibilité de chaque jour (heure de Paris) et la durée "
            "des vérifications (médiane et 95ᵉ centile : 95 % des vérifications du jour ont été "
            "plus rapides). Une durée qui atteint le délai maximal signale un service qui ne "
            "répond plus."
            + (
                " Les traits rouges en pointillé, numérotés, marquent les sauts de l'horloge du "
                "système détectés par Vigie (liste dans la section « Environnement des "
                "observations ») : les heures enregistrées autour d'eux sont à lire avec prudence."
                if data.clock_jumps
                else ""
            ),
            s.body,
        )
    )
    for target in data.targets[:MAX_CHART_TARGETS]:
        block: list[Flowable] = [
            _p(f"{_e(target.name)} <font color='#52606d' size=8>({_e(target.id)})</font>", s.h2),
            _availability_chart(target, s.fonts, width, data.clock_jumps),
            Spacer(1, 6),
            _response_chart(target, s.fonts, width),
        ]
        story.append(KeepTogether(block))
    if len(data.targets) > MAX_CHART_TARGETS:
        story.append(
            _p(
                f"Graphiques limités aux {MAX_CHART_TARGETS} premiers services ; les données "
                "de tous figurent dans l'archive.",
                s.muted,
            )
        )
    return story


def _thumbnail(shot: Screenshot, s: _Styles, box: float) -> list[Flowable]:
    width = shot.width or 1
    height = shot.height or 1
    scale = min(box / width, (box * 0.75) / height)
    try:
        image: Flowable = Image(
            io.BytesIO(shot.thumbnail_png), width=width * scale, height=height * scale
        )
    except Exception:  # noqa: BLE001 - an unreadable thumbnail must not stop the report
        image = _p("(miniature illisible)", s.muted)
    when = format_datetime_fr(shot.taken_at, seconds=True) if shot.taken_at else "heure inconnue"
    caption = (
        f"<b>{_e(shot.target_id)}</b> — {_e(when)}<br/>"
        f"<font name='{s.fonts.mono}' size=5.5>artifacts/{_e(shot.sha256[:32])}…</font>"
    )
    return [image, _p(caption, s.small)]


def _screenshots(data: ReportData, s: _Styles, width: float) -> list[Flowable]:
    if not data.screenshots:
        return []
    story: list[Flowable] = [PageBreak(), _p("4. Captures d'écran des échecs", s.h1)]
    story.append(
        _p(
            "Miniatures de pages telles que le navigateur de Vigie les affichait au moment d'un "
            "échec. L'image complète se trouve dans le dossier <i>artifacts/</i> de l'archive, "
            "sous le nom indiqué (son empreinte SHA-256, enregistrée dans l'observation).",
            s.body,
        )
    )
    if data.offline_captures:
        one = data.offline_captures == 1
        story.append(
            _p(
                f"{_plural(data.offline_captures, 'capture prise', 'captures prises')} alors "
                "que la connexion du point d'observation lui-même était coupée (tous les sites "
                "témoins en échec) "
                + ("n'est pas montrée" if one else "ne sont pas montrées")
                + " ici : ce n'est pas un échec du service observé. "
                + ("Elle reste" if one else "Elles restent")
                + " dans le dossier <i>artifacts/</i> de l'archive.",
                s.body,
            )
        )
    story.append(Spacer(1, 6))
    columns = 3
    box = width / columns - 8
    cells = [_thumbnail(shot, s, box) for shot in data.screenshots]
    rows: list[list[Any]] = [cells[i : i + columns] for i in range(0, len(cells), columns)]
    if rows and len(rows[-1]) < columns:
        rows[-1] = rows[-1] + [""] * (columns - len(rows[-1]))
    table = Table(rows, colWidths=[width / columns] * columns)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
            ]
        )
    )
    story.append(table)
    return story


def _methodology(data: ReportData, s: _Styles, width: float, number: int) -> list[Flowable]:
    m = data.methodology
    story: list[Flowable] = [PageBreak(), _p(f"{number}. Méthode d'observation", s.h1)]
    story.append(
        _p(
            "Vigie est un programme libre qui vérifie à intervalles réguliers, comme le ferait "
            "un usager, que des services publics en ligne répondent. Chaque vérification est "
            "enregistrée aussitôt, qu'elle réussisse ou échoue.",
            s.body,
        )
    )
    story.append(_p("Ce qui a été observé", s.h2))
    rows: list[list[Any]] = [
        [_p(h, s.cell_bold) for h in ("Service", "Adresse", "Méthode", "Fréquence", "Succès si")]
    ]
    for t in data.targets:
        method = (
            "navigateur Chromium (parcours : " + "; ".join(_e(x) for x in t.steps) + ")"
            if t.kind == "browser" and t.steps
            else "navigateur Chromium"
            if t.kind == "browser"
            else "requête HTTP GET"
        )
        rows.append(
            [
                _p(_e(t.name), s.cell),
                _p(_url_html(t.url, s.mono, width * 0.26 - 12), s.mono),
                _p(method, s.cell),
                _p(f"{_every(t.interval_s)} ; délai maximal {_g(t.timeout_s)}{_NBSP}s", s.cell),
                _p(_e(t.expectation), s.cell),
            ]
        )
    story.append(_table(rows, [width * f for f in (0.18, 0.26, 0.2, 0.16, 0.2)]))
    story.append(_p("Règles", s.h2))
    bullets = [
        (
            "<b>Lecture seule.</b> Vigie n'envoie que des requêtes de consultation (GET ou HEAD). "
            "Le navigateur des parcours est enfermé dans un réseau isolé dont la seule sortie "
            "est un relais tenu par Vigie : ce relais refuse toute autre requête (envoi de "
            "formulaire, WebSocket, flux non web) avant qu'un seul octet n'atteigne le site, "
            "quelle que soit la partie de la page qui l'émet, et chaque refus est consigné dans "
            "l'observation. Sans cet isolement, les parcours ne sont pas lancés. Aucun "
            "formulaire n'est envoyé, aucun compte n'est créé ni utilisé."
        ),
        (
            "<b>Identification.</b> Chaque requête s'annonce avec l'identifiant "
            f"« {_e(m.user_agent)} »."
        ),
        (
            f"<b>Confirmation.</b> Une interruption n'est retenue qu'après {m.confirm_after} "
            f"vérifications consécutives en échec (nouvelle vérification toutes les "
            f"{_g(m.recheck_s)}{_NBSP}s en cas d'échec) ; elle prend fin après {m.recover_after} "
            "vérifications consécutives réussies. Son début est l'heure de la première "
            "vérification en échec."
        ),
        "<b>Contrôles.</b> Pour distinguer une panne du service d'une panne de la connexion de "
        "Vigie, des sites témoins indépendants sont vérifiés en même temps"
        + (" : " + ", ".join(_e(c) for c in m.controls) if m.controls else "")
        + ". Quand tous échouent, les observations sont marquées « point d'observation hors "
        "ligne » et ne comptent ni pour ni contre le service.",
        "<b>Maintenances annoncées.</b> "
        + (
            "Fenêtres déclarées : " + "; ".join(_e(w) for w in m.maintenance) + ". "
            if m.maintenance
            else "Aucune fenêtre déclarée. "
        )
        + "Les interruptions qui les recoupent sont signalées comme telles et restent comptées.",
        (
            "<b>Captures.</b> Pour chaque échec, Vigie conserve la réponse du serveur "
            "(fichier WARC, norme ISO 28500) ou, pour les parcours en navigateur, une capture "
            "d'écran et le code HTML de la page."
        ),
    ]
    story += [
        _p(
            text,
            s.bullet,
        )
        for text in bullets
    ]
    for flowable in story[-len(bullets) :]:
        if isinstance(flowable, Paragraph):
            flowable.bulletText = "•"
    return story


def _outage_count(down: int, slow: int) -> str:
    """The outages of the cover: confirmed interruptions, and the slow periods beside them."""
    text = (
        _plural(down, "interruption confirmée", "interruptions confirmées")
        if down
        else "aucune interruption confirmée"
    )
    if slow:
        text += f" ; {_plural(slow, 'période de lenteur', 'périodes de lenteur')}"
    return text


def _plural(count: int, word: str, plural: str | None = None) -> str:
    """``1 interruption``, ``0 interruption``, ``3 interruptions`` (French: 0 and 1 are
    singular); `plural` when it is not `word` + s (``capture prise`` / ``captures prises``)."""
    return f"{_number(count)} {(plural or word + 's') if count > 1 else word}"


def _seen(value: SeenValue, census: bool = False) -> str:
    """A value, with how many observations recorded it and when (Paris time); in a census
    (`census`), a value no observation recorded is the configured one and says so."""
    text = _e(value.value)
    if not value.count:
        if census:
            text += (
                " <font color='#52606d' size=6.5>— valeur de la configuration, non relevée "
                "dans les observations</font>"
            )
        return text
    when = ""
    if value.first is not None and value.last is not None:
        first, last = _short_datetime(value.first), _short_datetime(value.last)
        when = f", le {first}" if first == last else f", du {first} au {last}"
    return (
        f"{text} <font color='#52606d' size=6.5>— {_plural(value.count, 'observation')}"
        f"{_e(when)}</font>"
    )


def _seen_list(
    values: Sequence[SeenValue],
    omitted: int = 0,
    empty: str = "non enregistré",
    *,
    missing: int = 0,
    census: bool = False,
) -> str:
    lines = [_seen(v, census) for v in values]
    if missing and any(v.count for v in values):
        lines.append(
            f"<font color='#52606d' size=6.5>non enregistré dans "
            f"{_plural(missing, 'observation')}</font>"
        )
    if omitted:
        lines.append(
            f"<font color='#52606d' size=6.5>et d'autres valeurs, dans "
            f"{_plural(omitted, 'observation')}, non détaillées ici (voir "
            "observations.jsonl)</font>"
        )
    return "<br/>".join(lines) if lines else _e(empty)


def _addresses(
    by_target: Mapping[str, Sequence[SeenValue]], omitted: Mapping[str, int], prefix: str
) -> str:
    blocks = []
    for target, values in sorted(by_target.items()):
        listed = _seen_list(values, omitted.get(f"{prefix}/{target}", 0))
        blocks.append(f"<b>{_e(target)}</b> :<br/>{listed}")
    return "<br/>".join(blocks)


def _clock_jumps(data: ReportData, s: _Styles, width: float) -> list[Flowable]:
    """The wall-clock jumps the service recorded, as a table (or a sentence when none)."""
    story: list[Flowable] = [_p("Sauts d'horloge", s.h2)]
    intro = (
        "Vigie compare en permanence l'horloge du système, qui date les observations, à une "
        "horloge monotone, qui ne peut ni avancer ni reculer brusquement. Un écart entre les "
        "deux (« saut d'horloge ») est aussitôt inscrit au registre (entrée « clock_jump ») ; "
        "il n'est jamais corrigé dans les observations."
    )
    if not data.clock_jumps_known:
        story.append(
            _p(
                intro + " Cet export n'a pas recherché ces entrées : les éventuels sauts "
                "figurent dans <i>observations.jsonl</i> (entrées de type « clock_jump »).",
                s.body,
            )
        )
        return story
    total = data.clock_jumps_total or len(data.clock_jumps)
    if not total:
        story.append(_p(intro + " Aucun saut n'a été détecté pendant la période.", s.body))
        return story
    story.append(
        _p(
            intro + f" <b>{_plural(total, 'saut')} détecté{'s' if total > 1 else ''} pendant "
            "la période.</b> Après un saut en avant, les heures enregistrées sont en avance de "
            "son ampleur (en retard après un saut en arrière) jusqu'à ce que l'horloge soit "
            "remise à l'heure ; les durées des vérifications, mesurées sur l'horloge "
            "monotone, ne sont pas affectées. Les interruptions concernées sont marquées dans "
            "le tableau des interruptions, et les sauts sur les graphiques jour par jour.",
            s.body,
        )
    )
    story.append(Spacer(1, 4))
    header = ["N°", "Détecté le (Paris)", "L'horloge aurait dû indiquer", "Ampleur", "Sens"]
    rows: list[list[Any]] = [[_p(h, s.cell_bold) for h in header]]
    for number, jump in enumerate(data.clock_jumps, start=1):
        sync = (
            ""
            if jump.synchronized is None
            else " ; horloge synchronisée"
            if jump.synchronized
            else " ; horloge non synchronisée"
        )
        rows.append(
            [
                _p(str(number), s.cell),
                _p(
                    _e(_short_datetime(jump.detected_at))
                    + (f"<br/><font size=6.5>entrée n° {jump.seq}</font>" if jump.seq else ""),
                    s.cell,
                ),
                _p(_e(_short_datetime(jump.expected_at)) if jump.expected_at else "—", s.cell),
                _p(_e(_jump_size(jump)), s.cell),
                _p(
                    (
                        "en avant (l'horloge a avancé)"
                        if jump.forward
                        else "en arrière (l'horloge a reculé)"
                    )
                    + sync,
                    s.cell,
                ),
            ]
        )
    story.append(_table(rows, [width * f for f in (0.06, 0.22, 0.22, 0.22, 0.28)]))
    if total > len(data.clock_jumps):
        story.append(
            _p(
                f"Seuls les {len(data.clock_jumps)} premiers sauts sont reproduits ici ; les "
                f"{total} figurent dans <i>observations.jsonl</i>.",
                s.muted,
            )
        )
    return story


def _environment(data: ReportData, s: _Styles, width: float, number: int) -> list[Flowable]:
    env = data.environment
    if env.complete:
        scope = (
            "Les valeurs ci-dessous sont celles enregistrées dans les observations elles-mêmes : "
            f"pour chaque rubrique, toutes les valeurs distinctes relevées dans les "
            f"{_plural(env.observations, 'observation')} de la période, chacune avec le nombre "
            "d'observations qui l'ont enregistrée et la date de la première et de la dernière "
            "(heure de Paris)."
            + (
                " Au-delà d'un nombre limité de valeurs distinctes par rubrique, les "
                "suivantes sont comptées sans être détaillées ; toutes figurent dans "
                "<i>observations.jsonl</i>."
                if env.omitted
                else ""
            )
        )
    else:
        scope = (
            "Les valeurs ci-dessous sont celles de la <b>première observation</b> de la "
            "période seulement : cet export n'a pas recensé les valeurs de toutes les "
            "observations. Chaque observation enregistre les siennes (champ « environment » "
            "de <i>observations.jsonl</i>)."
        )
    story: list[Flowable] = [
        CondPageBreak(8 * cm),
        _p(f"{number}. Environnement des observations (NF Z67-147)", s.h1),
        _p(
            "La norme NF Z67-147 décrit les conditions d'un constat sur internet : qui observe, "
            "depuis où, avec quels outils, à travers quel réseau. " + scope,
            s.body,
        ),
        Spacer(1, 6),
    ]
    omitted = env.omitted

    def values(field: str, empty: str = "non enregistré") -> str:
        return _seen_list(
            getattr(env, field),
            omitted.get(field, 0),
            empty,
            missing=env.missing.get(field, 0),
            census=env.complete,
        )

    if env.remote_ips or env.resolved_ips:
        remote = _addresses(env.remote_ips, omitted, "remote_ips") or "non enregistré"
        resolved = _addresses(env.resolved_ips, omitted, "resolved_ips")
    elif env.complete:
        remote, resolved = "non enregistré dans les observations", ""
    else:
        remote = (
            "non recensées dans ce rapport : chaque observation garde l'adresse contactée "
            "(colonne « ip_distante » de observations.csv)"
        )
        resolved = ""
    if env.fresh_profile and env.fresh_connection:
        fresh = (
            "oui : chaque vérification en navigateur part d'un profil neuf (cache, cookies et "
            "stockage vides) ; chaque requête HTTP part d'une connexion neuve, sans cookie ni "
            "cache"
        )
    else:
        fresh = "non garanti pour toutes les observations" + (
            f" : {_plural(env.not_fresh_profile, 'vérification')} en navigateur sans profil "
            f"neuf, {_plural(env.not_fresh_connection, 'requête')} HTTP sans connexion neuve"
            if env.complete
            else ""
        )
    rows = [
        ("Point d'observation", _e(env.vantage)),
        ("Opérateur (responsable)", _e(env.operator or "non renseigné")),
        ("Machine", values("hostnames")),
        ("Adresses IP de la machine", values("local_ips")),
        ("Résolveur DNS", values("resolvers")),
        ("Adresses IP des services (contactées)", remote),
    ]
    if resolved:
        rows.append(("Adresses IP des services (réponses DNS)", resolved))
    rows += [
        (
            "Serveur mandataire (proxy)",
            "aucun : connexions directes" if not env.proxies else values("proxies"),
        ),
        ("Système d'exploitation", values("os")),
        ("Navigateur", values("browsers", "sans objet (vérifications HTTP seulement)")),
        ("Logiciel (version de Vigie)", values("vigie")),
        ("Python", values("python")),
        ("Identifiant envoyé (User-Agent)", values("user_agents")),
        ("Profil vierge", fresh),
        (
            "Horloge",
            values("clock") + "<br/>Sauts d'horloge : " + _clock_summary(data, refer=False),
        ),
    ]
    story.append(_facts(rows, s, width))
    story += _clock_jumps(data, s, width)
    return story


def _custody(data: ReportData, s: _Styles, width: float, number: int) -> list[Flowable]:
    c = data.custody
    story: list[Flowable] = [
        CondPageBreak(8 * cm),
        _p(f"{number}. Chaîne de conservation", s.h1),
        _p(
            "Chaque observation est ajoutée, au moment où elle est faite, à un registre où rien "
            "ne peut être modifié ni supprimé. Le registre est un arbre de Merkle (comme les "
            "journaux de transparence des certificats, RFC 9162) : une empreinte unique, la "
            "racine, résume toutes les entrées. Vigie signe régulièrement cette racine "
            "(« point de contrôle ») avec sa clé Ed25519"
            + (
                ", et la fait horodater par une autorité d'horodatage (RFC 3161)"
                if c.timestamps
                else ""
            )
            + ". Modifier, retirer ou insérer une seule entrée changerait la racine et rendrait "
            "les signatures invalides.",
            s.body,
        ),
        Spacer(1, 6),
    ]

    def when(moment: dt.datetime | None) -> str:
        return _e(format_datetime_fr(moment, seconds=True)) if moment else "—"

    rows = [
        ("Registre", _e(c.ledger)),
        (
            "Entrées couvertes",
            f"{_plural(c.entries, 'entrée')} entre les n° {c.first_seq} et {c.last_seq}, dont "
            f"{_plural(c.observations, 'observation')} et "
            + _plural(c.outage_events, "événement d'interruption", "événements d'interruption")
            if c.first_seq is not None
            else "aucune",
        ),
        ("Première entrée", when(c.first_time)),
        ("Dernière entrée", when(c.last_time)),
        ("Points de contrôle signés", _number(c.checkpoints)),
    ]
    pairs = [("Premier point de contrôle", c.first_checkpoint)]
    if c.last_checkpoint != c.first_checkpoint:
        pairs.append(("Dernier point de contrôle", c.last_checkpoint))
    else:
        pairs = [("Point de contrôle", c.first_checkpoint)]
    for label, checkpoint in pairs:
        if checkpoint is not None:
            rows.append(
                (
                    label,
                    (
                        f"taille de l'arbre : {_number(checkpoint.tree_size)} entrées<br/>"
                        f"racine : <font name='{s.fonts.mono}' size=6.5>{_e(checkpoint.root_hash)}"
                        f"</font><br/>signé le {when(checkpoint.time)}"
                    ),
                )
            )
    rows.append(
        (
            "Horodatages RFC 3161",
            _plural(c.timestamps, "jeton")
            + (f" de {_e(c.tsa)}" if c.tsa else "")
            + (f", le dernier le {when(c.last_timestamp)}" if c.last_timestamp else "")
            if c.timestamps
            else "aucune autorité d'horodatage configurée",
        )
    )
    if c.public_key:
        rows.append(
            (
                "Clé publique du point d'observation",
                f"<font name='{s.fonts.mono}' size=6.5>{_e(c.public_key)}</font>",
            )
        )
    rows.append(
        (
            "Captures conservées",
            _plural(c.warcs, "fichier WARC", "fichiers WARC")
            + ", "
            + _plural(c.screenshots, "capture d'écran", "captures d'écran"),
        )
    )
    story.append(_facts(rows, s, width))
    return story


def _verify(data: ReportData, s: _Styles, width: float, number: int) -> list[Flowable]:
    story: list[Flowable] = [
        CondPageBreak(10 * cm),
        _p(f"{number}. Comment vérifier cette archive", s.h1),
        _p(
            "La vérification ne demande pas de faire confiance à Vigie ni à ce rapport : elle "
            "n'utilise que l'archive et des outils publics. Un informaticien peut la mener en "
            "quelques minutes, sur n'importe quel ordinateur, sans connexion à internet.",
            s.body,
        ),
        Spacer(1, 4),
    ]
    fingerprint = _fingerprint(data.custody.public_key)
    if fingerprint is not None:
        story.append(_p("Avant tout : la clé du point d'observation", s.h2))
        story.append(
            _p(
                "Les signatures prouvent que les données viennent du détenteur de la clé "
                "ci-dessous, pas qui il est. Il faut donc comparer l'empreinte de cette clé à "
                "celle obtenue <b>par un autre canal</b> que cette archive : publication de "
                f"l'opérateur ({_e(data.operator or 'non renseigné')}) sur son site ou par "
                "courrier, constat d'huissier, ou demande directe à l'opérateur. Si les deux "
                "diffèrent, l'archive n'émane pas de ce point d'observation, quel que soit le "
                "résultat des vérifications ci-dessous.",
                s.body,
            )
        )
        story.append(
            _facts(
                [
                    (
                        "Empreinte de la clé (SHA-256)",
                        f"<font name='{s.fonts.mono}'>{_e(fingerprint)}</font>",
                    ),
                    (
                        "Clé publique",
                        (
                            f"<font name='{s.fonts.mono}' size=6.5>"
                            f"{_e(data.custody.public_key or '')}</font>"
                        ),
                    ),
                    (
                        "La recalculer",
                        (
                            f"<font name='{s.fonts.mono}' size=6.5>openssl pkey -pubin -in "
                            "proofs/vantage.pub -outform DER | tail -c 32 | sha256sum</font> "
                            "(mêmes chiffres, en minuscules et sans espaces), ou "
                            f"<font name='{s.fonts.mono}' size=6.5>python3 verify.py --cle "
                            "« clé obtenue par l'autre canal »</font>, qui refuse une autre clé"
                        ),
                    ),
                ],
                s,
                width,
            )
        )
        story.append(Spacer(1, 4))
    steps = [
        f"Décompresser l'archive <i>{_e(data.bundle_name)}</i> dans un dossier vide.",
        (
            "Installer Python 3 et le module <i>cryptography</i> "
            "(<font name='{mono}'>pip install cryptography</font>)."
        ),
        (
            "Dans ce dossier, lancer <font name='{mono}'>python3 verify.py .</font> ; "
            "le programme, court et lisible, n'utilise que ces deux outils."
        ),
        (
            "Il vérifie la signature de <i>manifest.json</i> (liste de chaque fichier avec son "
            "empreinte SHA-256 et sa taille), puis l'empreinte de chaque fichier."
        ),
        (
            "Il recalcule, à partir des observations (<i>observations.jsonl</i>, octet pour octet "
            "comme dans le registre), la racine de l'arbre de Merkle et la compare à celle de "
            "chaque point de contrôle signé, dont il vérifie la signature avec la clé publique "
            "fournie (dossier <i>proofs/</i>)."
        ),
        (
            "Il vérifie que les points de contrôle successifs sont cohérents entre eux (aucune "
            "entrée retirée ni réécrite entre deux points de contrôle)."
        ),
        (
            "Jetons d'horodatage : le programme explique comment les vérifier avec "
            "<font name='{mono}'>openssl ts -verify</font> et le certificat de l'autorité fourni."
        ),
        (
            "Captures : les fichiers WARC du dossier <i>artifacts/</i> peuvent être relus avec "
            "tout outil d'archivage du web (par exemple <font name='{mono}'>warcio check</font>) ; "
            "leur empreinte est celle citée dans l'observation."
        ),
        (
            "Toute différence est signalée avec le nom du premier fichier ou de la première entrée "
            "en cause. Un résultat « OK » signifie que les données sont exactement celles "
            "enregistrées et signées au moment des observations."
        ),
    ]
    for index, text in enumerate(steps, start=1):
        paragraph = _p(text.replace("{mono}", s.fonts.mono), s.step)
        paragraph.bulletText = f"{index}."
        story.append(paragraph)
    story.append(Spacer(1, 4))
    story.append(
        _p(
            "Avec Vigie installé, la commande <font name='{mono}'>vigie verify {name}</font> "
            "fait les mêmes contrôles, jetons d'horodatage compris.".replace(
                "{mono}", s.fonts.mono
            ).replace("{name}", _e(data.bundle_name)),
            s.body,
        )
    )
    if data.files:
        story.append(
            KeepTogether(
                [
                    _p("Contenu de l'archive", s.h2),
                    _facts([(name, _e(what)) for name, what in data.files], s, width),
                ]
            )
        )
    return story


def _fingerprint(vkey: str | None) -> str | None:
    """The fingerprint of a verifier key string (None when absent or unreadable)."""
    if not vkey:
        return None
    from evidence.ledger.signing import NoteVerifier, key_fingerprint

    try:
        return key_fingerprint(NoteVerifier.parse(vkey).raw)
    except Exception:  # noqa: BLE001 - a report shows what it can
        return None


def _corroboration(data: ReportData, s: _Styles, number: int) -> list[Flowable]:
    corroboration = data.corroboration
    if corroboration is None:
        return []
    down = [o for o in data.outages if o.kind == "down"]
    seen = [o for o in down if o.seen_from >= corroboration.min_vantages]
    if corroboration.vantages:
        compared = (
            f"Les observations ont été comparées à celles de {len(corroboration.vantages)} "
            f"points d'observation ({_e(', '.join(corroboration.vantages))}), chacun avec son "
            "propre registre signé et vérifié."
        )
    else:
        compared = (
            "Les observations ont été comparées à celles d'autres points d'observation, "
            "chacun avec son propre registre signé et vérifié ; leurs noms n'ont pas été "
            "transmis lors de l'export (ils figurent dans la sortie de « vigie corroborate »)."
        )
    return [
        CondPageBreak(5 * cm),
        _p(f"{number}. Corroboration depuis plusieurs points d'observation", s.h1),
        _p(
            compared + " Une interruption est dite corroborée lorsqu'au moins "
            f"{corroboration.min_vantages} d'entre eux l'ont constatée sur une période qui se "
            f"recoupe. Interruptions corroborées : {len(seen)} sur {len(down)}. La "
            "colonne « Constatée depuis » du tableau des interruptions nomme, pour chacune, les "
            "points d'observation qui l'ont constatée.",
            s.body,
        ),
    ]


# --- entry point ------------------------------------------------------------------------------


def render_report(data: ReportData) -> bytes:
    """The report as PDF bytes (A4, French, fonts embedded, numbered pages)."""
    fonts = _register_fonts()
    styles = _Styles(fonts)
    buffer = io.BytesIO()
    margin = 2 * cm
    doc = french_document(
        buffer,
        title=data.title,
        author=f"Vigie — {data.vantage}",
        top_margin=1.8 * cm,
        margin=margin,
        subject=f"Constat {_period_text(data)}",
    )
    width = A4[0] - 2 * margin
    story: list[Flowable] = []
    story += _title_page(data, styles, width)
    story += _summary(data, styles, width)
    story += _outages(data, styles, width)
    story += _charts(data, styles, width)
    story += _screenshots(data, styles, width)
    number = 5 if data.screenshots else 4
    story += _methodology(data, styles, width, number)
    story += _environment(data, styles, width, number + 1)
    story += _custody(data, styles, width, number + 2)
    story += _verify(data, styles, width, number + 3)
    story += _corroboration(data, styles, number + 4)
    footer = f"Vigie — {data.vantage} — constat {_period_text(data, seconds=False)}"
    doc.build(story, canvasmaker=_numbered_canvas(fonts, footer, data.generated_at))
    return buffer.getvalue()
