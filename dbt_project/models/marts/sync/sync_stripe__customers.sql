{#- Stripe customers, one per account (POST /v1/customers); the account id rides in metadata. -#}
with accounts as (
    select * from {{ ref('accounts') }}
),

payloads as (
    select
        account_id as external_id,
        {{ json_text(json_object([
            ('name', 'account_name'),
            ('email', 'billing_email'),
            ('metadata', json_object([('billing_account_id', 'account_id')])),
        ])) }} as payload
    from accounts
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
