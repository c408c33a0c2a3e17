{#- Line types the billing lifecycle adds to rating's lines (everything else is a rated charge). -#}
{% macro lifecycle_line_types() -%}
    ('adjustment', 'coupon', 'tax', 'credit')
{%- endmacro %}

{#- Print order of a line: rated charges, late-usage adjustments, coupons, tax, prepaid credits. -#}
{% macro line_sort_key(line_type) -%}
    case {{ line_type }}
        when 'adjustment' then 2
        when 'coupon' then 3
        when 'tax' then 4
        when 'credit' then 5
        else 1
    end
{%- endmacro %}

{#- Lines that are not the gross: coupons, tax and prepaid credits (subtotal excludes them). -#}
{% macro non_gross_line_types() -%}
    ('coupon', 'tax', 'credit')
{%- endmacro %}

{#- When a billing period closes: its end plus the grace period for late events. -#}
{% macro period_closes_at(period_end) -%}
    cast({{ dbt.dateadd('day', var('finalization_grace_days') | int, 'cast(' ~ period_end ~ ' as timestamp)') }} as timestamp)
{%- endmacro %}

{#- A document number: prefix, year, '-', sequence of at least 4 digits (2026-0610, CN-2026-0007). -#}
{% macro document_number(prefix, number_year, number_seq) -%}
    {{ dbt.concat([
        "coalesce(" ~ prefix ~ ", '')",
        dbt.cast(number_year, dbt.type_string()),
        "'-'",
        "case when " ~ number_seq ~ " < 10000 then lpad(" ~ dbt.cast(number_seq, dbt.type_string()) ~ ", 4, '0') else "
            ~ dbt.cast(number_seq, dbt.type_string()) ~ " end"
    ]) }}
{%- endmacro %}

{#-
  The columns of a ledger document line, shared by the proposals (int_ledger_proposals) and the
  ledger (ledger_document_lines), with their types. The ledger adds the number and booking time.
-#}
{% macro ledger_line_columns() -%}
    {{ return([
        ('document_id', dbt.type_string()),
        ('document_type', dbt.type_string()),
        ('issuer_id', dbt.type_string()),
        ('number_prefix', dbt.type_string()),
        ('invoice_id', dbt.type_string()),
        ('account_id', dbt.type_string()),
        ('currency', dbt.type_string()),
        ('minor_units', 'integer'),
        ('period_start', 'date'),
        ('period_end', 'date'),
        ('plan_code', dbt.type_string()),
        ('plan_version', 'integer'),
        ('issued_on', 'date'),
        ('closes_at', 'timestamp'),
        ('reason', dbt.type_string()),
        ('recalculated_at', 'timestamp'),
        ('line_id', dbt.type_string()),
        ('line_number', 'bigint'),
        ('line_type', dbt.type_string()),
        ('charge_id', dbt.type_string()),
        ('meter_code', dbt.type_string()),
        ('dimension_value', dbt.type_string()),
        ('pricing_model', dbt.type_string()),
        ('description', dbt.type_string()),
        ('quantity', decimal_type()),
        ('unit_price', decimal_type()),
        ('amount_unrounded', decimal_type()),
        ('amount', money_type()),
        ('amount_minor', 'bigint'),
        ('corrects_invoice_id', dbt.type_string()),
        ('corrects_line_id', dbt.type_string()),
        ('instrument_id', dbt.type_string()),
        ('base_amount', decimal_type()),
        ('rate_percent', decimal_type()),
        ('tax_code', dbt.type_string()),
        ('customer_legal_name', dbt.type_string()),
        ('customer_address', dbt.type_string()),
        ('customer_country', dbt.type_string()),
        ('customer_tax_id', dbt.type_string()),
        ('payment_terms_days', 'integer'),
        ('due_on', 'date'),
        ('tax_treatment', dbt.type_string()),
        ('tax_note', dbt.type_string()),
        ('ledger_version', 'bigint'),
    ]) }}
{%- endmacro %}

{#- Tier detail frozen with final invoice lines (ledger_invoice_line_tiers). -#}
{% macro ledger_tier_columns() -%}
    {{ return([
        ('line_id', dbt.type_string()),
        ('invoice_id', dbt.type_string()),
        ('tier_number', 'integer'),
        ('lower_bound', decimal_type()),
        ('upper_bound', decimal_type()),
        ('unit_price', decimal_type()),
        ('tier_quantity', decimal_type()),
        ('flat_fee_charged', decimal_type()),
        ('amount_unrounded', decimal_type()),
        ('ledger_version', 'bigint'),
    ]) }}
{%- endmacro %}

{#-
  The table another model built in an EARLIER run, read without ref(): the ledger books the drafts
  the previous run computed (the final invoice is the last draft), while the drafts are computed
  from the ledger (a ref). A ref in both directions would be a cycle. When the table does not exist
  yet (a new warehouse), an empty relation with `columns` stands in; a column the earlier run did
  not have (a table built by an older version of the project) reads as null.
-#}
{% macro previous_run_relation(model_name, columns) -%}
    {%- set relation = none -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name == model_name -%}
            {%- set relation = adapter.get_relation(
                database=node.database, schema=node.schema, identifier=node.alias) -%}
            {%- if relation is not none -%}
                {{ columns_of(relation, columns) }}
            {%- else -%}
                {{ empty_relation(columns) }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ empty_relation(columns) }}
    {%- endif -%}
{%- endmacro %}

{#- `columns` of a relation, in that order; a column the table does not have (it was built by an
    older version of the project, e.g. a ledger before an upgrade) reads as null. -#}
{% macro columns_of(relation, columns) -%}
    {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    (select {% for name, type in columns %}{% if name in existing %}{{ name }}{% else %}cast(null as {{ type }}) as {{ name }}{% endif %}{{ ", " if not loop.last }}{% endfor %} from {{ relation }})
{%- endmacro %}

{% macro empty_relation(columns) -%}
    (select {% for name, type in columns %}cast(null as {{ type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %} where 1 = 0)
{%- endmacro %}

{#- The ledger's own columns: the proposal columns plus the number and booking time. -#}
{% macro ledger_document_columns() -%}
    {{ return(ledger_line_columns() + [
        ('document_number', dbt.type_string()),
        ('number_year', 'integer'),
        ('number_seq', 'bigint'),
        ('finalized_at', 'timestamp'),
    ]) }}
{%- endmacro %}

{#-
  The ledger for readers (a ref, so lineage shows it). Runs that do not finalize (the daily
  pipeline) read it too; before the first close has created it, an empty relation stands in.
-#}
{#- Aliased: PostgreSQL (before 16) refuses a subquery in FROM without a name, and callers
    write `from {{ ledger_lines() }}`. -#}
{% macro ledger_lines() -%}
    {{ ref_or_empty(ref('ledger_document_lines'), ledger_document_columns()) }} as ledger_document_lines
{%- endmacro %}

{% macro ledger_tiers() -%}
    {{ ref_or_empty(ref('ledger_invoice_line_tiers'),
        [('tier_line_id', dbt.type_string())] + ledger_tier_columns()) }} as ledger_invoice_line_tiers
{%- endmacro %}

{% macro ref_or_empty(relation, columns) -%}
    {#- A dbt unit test's fixture (a CTE named __dbt__cte__...) is used as it is. -#}
    {%- if relation is string or (relation.identifier or '').startswith('__dbt__cte__') -%}
        {{ relation }}
    {%- elif not execute -%}
        {{ relation }}
    {%- elif adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier) is none -%}
        {{ empty_relation(columns) }}
    {%- else -%}
        {{ columns_of(relation, columns) }}
    {%- endif -%}
{%- endmacro %}

{#-
  A table written by a Dagster asset outside dbt (e.g. payments.stripe_invoice_status), declared
  as a source: the source when it exists, else an empty relation with `columns`, so the models
  that read it build before the asset first ran.
-#}
{% macro source_or_empty(source_name, table_name, columns) -%}
    {{ ref_or_empty(source(source_name, table_name), columns) }}
{%- endmacro %}

{#- The columns the payments/stripe_invoice_status asset writes (dagster_billing/sync/payments.py). -#}
{% macro stripe_invoice_status_columns() -%}
    {{ return([
        ('invoice_id', dbt.type_string()),
        ('stripe_invoice_id', dbt.type_string()),
        ('status', dbt.type_string()),
        ('currency', dbt.type_string()),
        ('amount_due', 'bigint'),
        ('amount_paid', 'bigint'),
        ('amount_remaining', 'bigint'),
        ('due_date', 'date'),
        ('paid_at', 'timestamp'),
        ('observed_at', 'timestamp'),
    ]) }}
{%- endmacro %}

{#- The receivables aging bucket of a number of days past due (0: current). -#}
{% macro aging_bucket(days_past_due) -%}
    case
        when {{ days_past_due }} <= 0 then 'current'
        when {{ days_past_due }} <= 30 then '1-30'
        when {{ days_past_due }} <= 60 then '31-60'
        when {{ days_past_due }} <= 90 then '61-90'
        else '90+'
    end
{%- endmacro %}
