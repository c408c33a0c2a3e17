"""The customer portal's routes, mounted under /portal by the ingestion API (api/app.py).

    GET /portal/s/<token>                 open a portal link: sets the session cookie, redirects
    GET /portal/                          current period: usage and charges so far, estimate
    GET /portal/trends?days=30|90         daily usage per meter, this period against the last
    GET /portal/invoices                  invoices (draft and final) and credit notes
    GET /portal/invoices/<id>             one invoice's lines
    GET /portal/invoices/<id>/pdf|csv     its PDF (final invoices) and lines as CSV
    GET /portal/invoices/<id>/usage.csv   the daily usage of its period
    GET /portal/credit-notes/<id>/pdf|csv a credit note
    GET /portal/credits                   prepaid credit balance and movements
    GET /portal/alerts                    usage thresholds crossed, commitment true-up to come
    GET /portal/logout                    forget the session

Every page and download takes its account from the session cookie only (never from the URL);
a document id of another account answers 404 like an unknown one. Pages read the published
analytics snapshot, never the warehouse. Each response carries `Server-Timing` (TimedRoute).
"""

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from dagster_billing.analytics import NoSnapshotYet
from dagster_billing.defs.invoicing.csv_files import (
    write_credit_note_exports,
    write_invoice_exports,
    write_usage_exports,
)
from dagster_billing.lib.money import round_money
from dagster_billing.portal import charts, pages
from dagster_billing.portal.documents import credit_note_pdf, invoice_pdf
from dagster_billing.portal.formatting import Formatter, negotiate_locale
from dagster_billing.portal.links import (
    SESSION_COOKIE,
    ExpiredToken,
    Grant,
    InvalidToken,
    PortalNotConfigured,
    load_secret,
    session_token,
    verify_link,
    verify_session,
)
from dagster_billing.portal.snapshots import PortalSnapshot, PortalSnapshots

HERE = Path(__file__).parent
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
SECURITY_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
# A chart is an SVG image with its own <style>; it runs no script.
SVG_HEADERS = SECURITY_HEADERS | {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"
}
NAV = (
    ("usage", "/portal/", "Usage"),
    ("trends", "/portal/trends", "Trends"),
    ("invoices", "/portal/invoices", "Invoices"),
    ("credits", "/portal/credits", "Credits"),
    ("alerts", "/portal/alerts", "Alerts"),
)


class PortalError(Exception):
    """An answer without data: status, title and a sentence for the reader."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class TimedRoute(APIRoute):
    """Adds `Server-Timing: app;dur=<ms>, cpu;dur=<ms>`: the time spent in the handler,
    rendering included, and the process's CPU time meanwhile (the request's own CPU when requests
    do not overlap, as in bench/portal_bench.py; on a loaded machine the first grows, not this)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def timed(request: Request) -> Response:
            started, cpu_started = time.perf_counter(), time.process_time()
            response = await handler(request)
            elapsed = (time.perf_counter() - started) * 1000
            cpu = (time.process_time() - cpu_started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.2f}, cpu;dur={cpu:.2f}"
            return response

        return timed


class Portal:
    """What the routes share: the data directory, the secret, the snapshot."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.exports_dir = data_dir / "exports"
        self.snapshots = PortalSnapshots(data_dir)
        self._secret: str | None = None

    def secret(self) -> str:
        if self._secret is None:
            try:
                self._secret = load_secret(self.data_dir)
            except PortalNotConfigured as error:
                raise PortalError(503, "Portal not configured", str(error)) from None
        return self._secret

    def snapshot(self) -> PortalSnapshot:
        try:
            return self.snapshots.current()
        except NoSnapshotYet:
            raise PortalError(
                503,
                "No data yet",
                "Your usage appears here after the billing pipeline's first run.",
            ) from None


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(f"{name}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _error_page(error: PortalError) -> HTMLResponse:
    response = _page("error", error.status, title=error.title, message=error.message)
    if error.status in (401, 403):
        response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response


def _download(content: bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_file(write: Callable[[Path], list[Path]], pick: str) -> bytes:
    """Write the export files for the rows given into a temporary folder; one of them (by name)."""
    with tempfile.TemporaryDirectory(prefix="portal-") as folder:
        written = write(Path(folder))
        [chosen] = [path for path in written if path.name == pick]
        return chosen.read_bytes()


def create_portal(app: FastAPI, data_dir: Path) -> Portal:
    """Mount the portal on the API's app."""
    portal = Portal(data_dir)
    # Web pages, not part of the API a client programs against: kept out of the OpenAPI schema.
    router = APIRouter(prefix="/portal", route_class=TimedRoute, include_in_schema=False)

    @app.exception_handler(PortalError)
    async def portal_error(request: Request, error: PortalError) -> Response:
        return _error_page(error)

    def session(request: Request) -> Grant:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise PortalError(
                401,
                "Sign in with your portal link",
                "Open the portal link you were sent (ask your account manager for a new one).",
            )
        try:
            return verify_session(portal.secret(), token)
        except ExpiredToken:
            raise PortalError(
                401, "Session ended", "Your session has ended: open your portal link again."
            ) from None
        except InvalidToken:
            raise PortalError(
                403, "Not a valid session", "Open the portal link you were sent."
            ) from None

    Session = Annotated[Grant, Depends(session)]

    def render(
        request: Request,
        grant: Grant,
        snapshot: PortalSnapshot,
        name: str,
        variant: tuple = (),
        **context: Any,
    ) -> HTMLResponse:
        """The page's HTML, rendered once per snapshot, account, locale and variant."""
        locale = negotiate_locale(request.headers.get("accept-language"))

        def html() -> str:
            account = pages.account(snapshot, grant.account_id)
            minor_units = {account.currency: account.minor_units} if account.currency else {}
            return TEMPLATES.get_template(f"{name}.html.j2").render(
                fmt=Formatter(locale, minor_units),
                account=account,
                snapshot=snapshot,
                nav=NAV,
                active=context.pop("active", name),
                alert_count=pages.alert_count(snapshot, grant.account_id),
                **context,
            )

        key = ("html", name, grant.account_id, locale, *variant)
        return HTMLResponse(snapshot.cached(key, html), headers=SECURITY_HEADERS)

    def svg(snapshot: PortalSnapshot, key: tuple, draw: Callable[[], str]) -> Response:
        return Response(
            snapshot.cached(("svg", *key), draw),
            media_type="image/svg+xml",
            headers=SVG_HEADERS,
        )

    @router.get("/s/{token}")
    def open_link(token: str, request: Request) -> Response:
        secret = portal.secret()
        try:
            grant = verify_link(secret, token)
        except ExpiredToken:
            raise PortalError(
                401, "This link has expired", "Ask your account manager for a new portal link."
            ) from None
        except InvalidToken:
            raise PortalError(
                403, "This link is not valid", "Check that the whole link was copied."
            ) from None
        response = RedirectResponse("/portal/", status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            session_token(secret, grant),
            max_age=max(grant.expires_at - int(time.time()), 0),
            path="/portal",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @router.get("/logout")
    def logout() -> Response:
        response = _page(
            "error", 200, title="Signed out", message="Open your portal link to come back."
        )
        response.delete_cookie(SESSION_COOKIE, path="/portal")
        return response

    @router.get("/")
    def usage_page(request: Request, grant: Session) -> Response:
        snapshot = portal.snapshot()
        model = pages.usage(snapshot, grant.account_id)
        return render(request, grant, snapshot, "usage", model=model)

    @router.get("/trends")
    def trends_page(request: Request, grant: Session, days: int = 30) -> Response:
        snapshot = portal.snapshot()
        model = pages.trends(snapshot, grant.account_id, _trend_days(days))
        return render(
            request,
            grant,
            snapshot,
            "trends",
            (days,),
            model=model,
            trend_alt=trend_alt,
            charges_alt=charges_alt,
        )

    @router.get("/charts/usage-{meter_code}.svg")
    def trend_chart(request: Request, meter_code: str, grant: Session, days: int = 30):
        snapshot = portal.snapshot()
        model = pages.trends(snapshot, grant.account_id, _trend_days(days))
        meters = {meter["meter_code"]: meter for meter in model["meters"]}
        if meter_code not in meters:
            raise PortalError(404, "Not found", "No such chart.")
        locale = negotiate_locale(request.headers.get("accept-language"))
        return svg(
            snapshot,
            ("usage", grant.account_id, meter_code, days, locale),
            lambda: trend_svg(meters[meter_code], Formatter(locale)),
        )

    @router.get("/charts/charges.svg")
    def charges_chart(request: Request, grant: Session) -> Response:
        snapshot = portal.snapshot()
        comparison = pages.trends(snapshot, grant.account_id, pages.TREND_DAYS[0])["comparison"]
        if not comparison:
            raise PortalError(404, "Not found", "No earlier period to compare with.")
        locale = negotiate_locale(request.headers.get("accept-language"))
        return svg(
            snapshot,
            ("charges", grant.account_id, locale),
            lambda: charges_svg(comparison, Formatter(locale)),
        )

    @router.get("/invoices")
    def invoices_page(request: Request, grant: Session) -> Response:
        snapshot = portal.snapshot()
        model = pages.invoices(snapshot, grant.account_id)
        # PDFs are written by the close job, possibly after the snapshot: look every time.
        pdfs = {
            invoice["invoice_id"]
            for invoice in model["invoices"]
            if invoice_pdf(portal.exports_dir, invoice) is not None
        }
        note_pdfs = {
            note["credit_note_id"]
            for note in model["credit_notes"]
            if credit_note_pdf(portal.exports_dir, note) is not None
        }
        variant = (tuple(sorted(pdfs)), tuple(sorted(note_pdfs)))
        return render(
            request,
            grant,
            snapshot,
            "invoices",
            variant,
            model=model,
            pdfs=pdfs,
            note_pdfs=note_pdfs,
        )

    def owned_invoice(snapshot: PortalSnapshot, grant: Grant, invoice_id: str) -> dict:
        model = pages.invoice(snapshot, grant.account_id, invoice_id)
        if model is None:
            raise PortalError(404, "Not found", "There is no such invoice on your account.")
        return model

    def owned_credit_note(snapshot: PortalSnapshot, grant: Grant, credit_note_id: str) -> dict:
        model = pages.credit_note(snapshot, grant.account_id, credit_note_id)
        if model is None:
            raise PortalError(404, "Not found", "There is no such credit note on your account.")
        return model

    @router.get("/invoices/{invoice_id}")
    def invoice_page(invoice_id: str, request: Request, grant: Session) -> Response:
        snapshot = portal.snapshot()
        model = owned_invoice(snapshot, grant, invoice_id)
        has_pdf = invoice_pdf(portal.exports_dir, model["invoice"]) is not None
        return render(
            request,
            grant,
            snapshot,
            "invoice",
            (invoice_id, has_pdf),
            active="invoices",
            model=model,
            has_pdf=has_pdf,
        )

    @router.get("/invoices/{invoice_id}/pdf")
    def invoice_pdf_download(invoice_id: str, grant: Session) -> Response:
        invoice = owned_invoice(portal.snapshot(), grant, invoice_id)["invoice"]
        path = invoice_pdf(portal.exports_dir, invoice)
        if path is None:
            raise PortalError(
                404, "No PDF yet", "A PDF is issued when the invoice is final; see its CSV."
            )
        return FileResponse(
            path, media_type="application/pdf", filename=path.name, headers=SECURITY_HEADERS
        )

    @router.get("/invoices/{invoice_id}/csv")
    def invoice_csv_download(invoice_id: str, grant: Session) -> Response:
        model = owned_invoice(portal.snapshot(), grant, invoice_id)
        invoice = model["invoice"]
        content = _csv_file(
            lambda folder: write_invoice_exports([invoice], model["lines"], folder),
            "invoice_lines.csv",
        )
        name = invoice["invoice_number"] or invoice["invoice_id"]
        return _download(content, "text/csv; charset=utf-8", f"{name}.csv")

    @router.get("/invoices/{invoice_id}/usage.csv")
    def usage_csv_download(invoice_id: str, grant: Session) -> Response:
        snapshot = portal.snapshot()
        invoice = owned_invoice(snapshot, grant, invoice_id)["invoice"]
        daily, by_dimension = pages.usage_rows(snapshot, grant.account_id, invoice["period_start"])
        content = _csv_file(
            lambda folder: write_usage_exports(daily, by_dimension, folder),
            f"{grant.account_id}.csv",
        )
        period = invoice["period_start"].strftime("%Y-%m")
        return _download(content, "text/csv; charset=utf-8", f"usage-{period}.csv")

    @router.get("/credit-notes/{credit_note_id}/csv")
    def credit_note_csv_download(credit_note_id: str, grant: Session) -> Response:
        model = owned_credit_note(portal.snapshot(), grant, credit_note_id)
        note = model["credit_note"]
        content = _csv_file(
            lambda folder: write_credit_note_exports([note], model["lines"], folder),
            "credit_note_lines.csv",
        )
        return _download(content, "text/csv; charset=utf-8", f"{note['credit_note_number']}.csv")

    @router.get("/credit-notes/{credit_note_id}/pdf")
    def credit_note_pdf_download(credit_note_id: str, grant: Session) -> Response:
        note = owned_credit_note(portal.snapshot(), grant, credit_note_id)["credit_note"]
        path = credit_note_pdf(portal.exports_dir, note)
        if path is None:
            raise PortalError(404, "No PDF", "This credit note has no PDF; see its CSV.")
        return FileResponse(
            path, media_type="application/pdf", filename=path.name, headers=SECURITY_HEADERS
        )

    @router.get("/credits")
    def credits_page(request: Request, grant: Session) -> Response:
        snapshot = portal.snapshot()
        model = pages.credits(snapshot, grant.account_id)
        return render(request, grant, snapshot, "credits", model=model)

    @router.get("/alerts")
    def alerts_page(request: Request, grant: Session) -> Response:
        snapshot = portal.snapshot()
        model = pages.alerts(snapshot, grant.account_id)
        return render(request, grant, snapshot, "alerts", model=model)

    app.include_router(router)
    app.mount("/portal/static", StaticFiles(directory=HERE / "static"), name="portal-static")
    return portal


def _trend_days(days: int) -> int:
    if days not in pages.TREND_DAYS:
        raise PortalError(404, "Not found", "Trends cover the last 30 or 90 days.")
    return days


def trend_svg(meter: dict, fmt: Formatter) -> str:
    """One meter's daily usage as a line chart."""
    return charts.daily_line(
        title=f"{meter['meter_code']}: daily {meter['measure']} ({meter['unit']})",
        desc=trend_alt(meter, fmt),
        days=[fmt.date(day) for day, _ in meter["days"]],
        values=[value for _, value in meter["days"]],
        value_formatter=lambda tick: fmt.quantity(charts.tick_decimal(tick)),
    )


def trend_alt(meter: dict, fmt: Formatter) -> str:
    """The chart's text alternative: what it plots, its range and its peak."""
    days = meter["days"]
    peak_day, peak = max(days, key=lambda item: item[1])
    return (
        f"Line chart of {meter['meter_code']}, daily {meter['measure']} in {meter['unit']}, "
        f"from {fmt.date(days[0][0])} to {fmt.date(days[-1][0])}; highest "
        f"{fmt.quantity(peak)} on {fmt.date(peak_day)}. The table below lists every day."
    )


def charges_svg(comparison: dict, fmt: Formatter) -> str:
    """Usage charges by meter, this period so far against the previous period."""
    current = comparison["current"]
    currency, minor_units = current["currency"], current["minor_units"]
    return charts.compare_bars(
        title=f"Usage charges by meter ({currency})",
        desc=charges_alt(comparison, fmt),
        labels=[row["meter_code"] for row in comparison["charges"]],
        series=[
            ("This period so far", [row["current_amount"] for row in comparison["charges"]]),
            ("Previous period", [row["previous_amount"] for row in comparison["charges"]]),
        ],
        value_formatter=lambda tick: fmt.money(
            round_money(charts.tick_decimal(tick), minor_units), currency, minor_units
        ),
    )


def charges_alt(comparison: dict, fmt: Formatter) -> str:
    current, previous = comparison["current"], comparison["previous"]
    return (
        "Bar chart of usage charges per meter, "
        f"{fmt.period(current['period_start'], current['period_end'])} so far against "
        f"{fmt.period(previous['period_start'], previous['period_end'])}. "
        "The table below lists the amounts."
    )
