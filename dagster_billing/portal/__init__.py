"""The customer portal: one web page per account, served by the ingestion API under /portal.

Customers open it with a signed, expiring link (`billing portal link ACCOUNT`, links.py); every
page reads the published analytics snapshot (snapshots.py), never the live warehouse, and shows
exact amounts formatted for the reader's locale (formatting.py). docs/portal.md is the user's
page; web.py lists the routes.
"""

from dagster_billing.portal.links import PortalNotConfigured, portal_link

__all__ = ["PortalNotConfigured", "portal_link"]
