{#- NetSuite customer records, one per account, upserted with PUT /record/v1/customer/eid:<account_id>. -#}
with accounts as (
    select * from {{ ref('accounts') }}
),

payloads as (
    select
        account_id as external_id,
        {{ json_text(json_object([
            ('companyName', 'account_name'),
            ('email', 'billing_email'),
            ('isPerson', 'false'),
            ('subsidiary', json_object([('id', sql_literal(var('netsuite_subsidiary_id')))])),
            ('currency', json_object([('id', netsuite_currency_id('currency'))])),
        ])) }} as payload
    from accounts
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
