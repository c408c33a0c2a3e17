{#-
  Who bills each account, whom the invoice is addressed to, and on what payment terms: the issuer
  (account_issuers, else the default issuer), the customer as invoiced (account_billing_profiles,
  else the account name in the issuer's country, without a tax id) and the payment terms in days
  (the profile's, else the issuer's default). Open invoices read it every run; final invoices keep
  what it said when they were booked (the ledger freezes it).
-#}
with default_issuer as (
    select issuer_id from {{ ref('issuers') }} where is_default
),

billed_by as (
    select
        accounts.account_id,
        accounts.account_name,
        coalesce(account_issuers.issuer_id, default_issuer.issuer_id) as issuer_id
    from {{ ref('accounts') }} as accounts
    left join {{ ref('account_issuers') }} as account_issuers
        on accounts.account_id = account_issuers.account_id
    cross join default_issuer
)

select
    billed_by.account_id,
    billed_by.issuer_id,
    coalesce(profiles.legal_name, billed_by.account_name) as customer_legal_name,
    profiles.address_line as customer_address,
    coalesce(profiles.country_code, issuers.country_code) as customer_country,
    case when trim(profiles.tax_id) = '' then null else trim(profiles.tax_id) end as customer_tax_id,
    cast(coalesce(profiles.payment_terms_days, issuers.default_payment_terms_days) as integer)
        as payment_terms_days
from billed_by
inner join {{ ref('issuers') }} as issuers on billed_by.issuer_id = issuers.issuer_id
left join {{ ref('account_billing_profiles') }} as profiles
    on billed_by.account_id = profiles.account_id
