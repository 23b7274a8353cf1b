"""The seed documents' issuing code, verbatim except for the base URL.

Run by test/integration/seed-snippets.test.ts with KEYBRAKE_BASE pointing at a control plane's
admin address and the tokens in the environment, as a Metaflow step would have them.
"""
import hashlib
import json
import os

import httpx

BASE = os.environ["KEYBRAKE_BASE"]


# From the first seed document (BillingFlow._issue_vault_key), self removed.
def _issue_vault_key(run_id: str, budget_usd: float) -> str:
    r = httpx.post(
        f"{BASE}/vault/keys",
        headers={"Authorization": f"Bearer {os.environ['KEYBRAKE_API_KEY']}"},
        json={
            "vendor": "stripe",
            "daily_usd_cap": budget_usd,
            "allowed_endpoints": ["POST /v1/payment_intents"],
            "expires_in": "4h",
            "agent_run_label": f"metaflow/{run_id}",
        },
    )
    return r.json()["vault_key"]


# From the second seed document (failure mode 2).
def issue_vault_key(label: str, max_amount_cents: int) -> str:
    resp = httpx.post(
        f"{BASE}/admin/vault_keys",
        headers={"Authorization": f"Bearer {os.environ['KEYBRAKE_ADMIN_KEY']}"},
        json={
            "label": label,
            "vendor": "stripe",
            "allowed_endpoints": ["POST /v1/charges"],
            "daily_usd_cap": round(max_amount_cents / 100 * 1.1, 2),
            "expires_in_seconds": 7200,
        },
        timeout=5.0,
    )
    resp.raise_for_status()
    return resp.json()["vault_key"]


def billing_idempotency_key(customer_id: str, amount_cents: int, billing_period: str) -> str:
    raw = f"{customer_id}:{amount_cents}:{billing_period}:metaflow-billing"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


if __name__ == "__main__":
    billing_period = "2026-07"
    raw_tasks = [("cus_aaa", 999), ("cus_bbb", 2999), ("cus_ccc", 9999)]
    billing_tasks = [
        {
            "customer_id": cid,
            "amount_cents": amt,
            "vault_key": issue_vault_key(f"metaflow-{billing_period}-{cid}", max_amount_cents=amt),
        }
        for cid, amt in raw_tasks
    ]
    print(json.dumps({
        "flow_key": _issue_vault_key(run_id="1234", budget_usd=300.0),
        "branch_keys": billing_tasks,
    }))
