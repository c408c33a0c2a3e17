{{ config(meta={"dagster": {"ref": {"name": "int_billing_segments"}}}) }}
-- Every segment of an invoice is priced in the account's currency (one currency per invoice).
select segments.billing_segment_id, segments.currency, accounts.currency as account_currency
from {{ ref('int_billing_segments') }} as segments
inner join {{ ref('accounts') }} as accounts on segments.account_id = accounts.account_id
where segments.currency != accounts.currency
