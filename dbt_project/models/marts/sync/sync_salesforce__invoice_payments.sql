{#-
  The payment side of each Billing_Invoice__c (one per final invoice): status, paid, outstanding
  and aging bucket as billing.fct_invoice_payments has them at the run's clock. Upserted by
  External_Id__c onto the record sync_salesforce__invoices created, so only these fields change;
  a row is sent again whenever one of them moves.
-#}
with payments as (
    select * from {{ ref('fct_invoice_payments') }}
),

payloads as (
    select
        invoice_id as external_id,
        {{ json_text(json_object([
            ('attributes', json_object([('type', "'Billing_Invoice__c'")])),
            ('External_Id__c', 'invoice_id'),
            ('Payment_Status__c', 'payment_status'),
            ('Amount_Paid__c', money_text('amount_paid', 'minor_units')),
            ('Amount_Outstanding__c', money_text('outstanding', 'minor_units')),
            ('Aging_Bucket__c', 'aging_bucket'),
        ])) }} as payload
    from payments
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
