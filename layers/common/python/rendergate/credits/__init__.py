"""Credits: what work costs (`pricing`), the ledger every balance change goes through in one transaction
(`ledger`), what endings give back (`settlement`), admins' grants with dual authorisation (`grants`),
statements and exports (`statements`), and the daily refresh and reconciliation (`upkeep`)."""

from rendergate.credits.ledger import accept_paid_run, release_slot
from rendergate.credits.pricing import Price
from rendergate.credits.settlement import settle, settle_ended

__all__ = ["Price", "accept_paid_run", "release_slot", "settle", "settle_ended"]
